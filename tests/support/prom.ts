// A strict parser of the Prometheus text exposition format (version 0.0.4), for tests that scrape
// /metrics: it throws on anything a Prometheus server would refuse (bad names, bad escapes, a TYPE
// after its samples, a family split in two, duplicate series, histograms whose buckets are not
// cumulative or whose +Inf bucket differs from _count).

export type MetricType = "counter" | "gauge" | "histogram" | "summary" | "untyped";

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
  timestamp?: number;
}

export interface Family {
  name: string;
  type: MetricType;
  help?: string;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set<MetricType>(["counter", "gauge", "histogram", "summary", "untyped"]);

export class PromParseError extends Error {
  constructor(lineNo: number, line: string, why: string) {
    super(`line ${lineNo}: ${why}: ${JSON.stringify(line.slice(0, 200))}`);
  }
}

/** As Prometheus reads a value (Go's ParseFloat): Inf, Infinity and NaN in any case. */
function parseValue(s: string): number {
  if (/^\+?inf(inity)?$/i.test(s)) return Infinity;
  if (/^-inf(inity)?$/i.test(s)) return -Infinity;
  if (/^nan$/i.test(s)) return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) throw new Error(`not a number: ${s}`);
  return Number(s);
}

/** The family a sample name belongs to, given the declared types. */
function familyOf(name: string, types: Map<string, MetricType>): string {
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length);
      const t = types.get(base);
      if (t === "histogram" || (t === "summary" && suffix !== "_bucket")) return base;
    }
  }
  return name;
}

function parseLabels(src: string, lineNo: number, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  const fail = (why: string): never => {
    throw new PromParseError(lineNo, line, why);
  };
  while (i < src.length) {
    const eq = src.indexOf("=", i);
    if (eq < 0) fail("label without '='");
    const name = src.slice(i, eq).trim();
    if (!LABEL_NAME.test(name)) fail(`bad label name ${JSON.stringify(name)}`);
    if (name in labels) fail(`label ${name} given twice`);
    if (src[eq + 1] !== '"') fail("label value must be quoted");
    let j = eq + 2;
    let value = "";
    for (;;) {
      if (j >= src.length) fail("unterminated label value");
      const ch = src[j];
      if (ch === "\\") {
        const nx = src[j + 1];
        if (nx === "\\") value += "\\";
        else if (nx === '"') value += '"';
        else if (nx === "n") value += "\n";
        else fail(`bad escape \\${nx}`);
        j += 2;
      } else if (ch === '"') {
        j += 1;
        break;
      } else if (ch === "\n") {
        fail("raw newline in label value");
      } else {
        value += ch;
        j += 1;
      }
    }
    labels[name] = value;
    if (j === src.length) break;
    if (src[j] !== ",") fail("expected ',' between labels");
    i = j + 1;
    if (i === src.length) break; // a trailing comma is allowed
  }
  return labels;
}

/** Parses exposition text into families keyed by name. Throws PromParseError on malformed input. */
export function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const types = new Map<string, MetricType>();
  const closed = new Set<string>();
  const seenSeries = new Set<string>();
  let current: string | null = null;
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  else if (text.length > 0) throw new PromParseError(lines.length, lines.at(-1)!, "text must end with a newline");

  const family = (name: string, lineNo: number, line: string): Family => {
    if (current !== name) {
      if (closed.has(name)) throw new PromParseError(lineNo, line, `samples of ${name} are not contiguous`);
      if (current !== null) closed.add(current);
      current = name;
    }
    let f = families.get(name);
    if (!f) families.set(name, (f = { name, type: types.get(name) ?? "untyped", samples: [] }));
    return f;
  };

  lines.forEach((line, idx) => {
    const lineNo = idx + 1;
    if (line.trim() === "") return;
    if (line.startsWith("#")) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(line);
      if (!m) return; // a plain comment
      const [, kind, name, rest = ""] = m;
      if (!METRIC_NAME.test(name)) throw new PromParseError(lineNo, line, `bad metric name ${name}`);
      if (kind === "TYPE") {
        const t = rest.trim() as MetricType;
        if (!TYPES.has(t)) throw new PromParseError(lineNo, line, `unknown type ${rest}`);
        if (types.has(name)) throw new PromParseError(lineNo, line, `second TYPE for ${name}`);
        if (families.get(name)?.samples.length) throw new PromParseError(lineNo, line, `TYPE for ${name} after its samples`);
        types.set(name, t);
        family(name, lineNo, line).type = t;
      } else {
        const f = family(name, lineNo, line);
        if (f.help !== undefined) throw new PromParseError(lineNo, line, `second HELP for ${name}`);
        f.help = rest.replace(/\\(\\|n)/g, (_, c: string) => (c === "n" ? "\n" : "\\"));
      }
      return;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?[ \t]+(\S+)(?:[ \t]+(-?\d+))?[ \t]*$/.exec(line);
    if (!m) throw new PromParseError(lineNo, line, "not a sample line");
    const [, name, rawLabels, rawValue, rawTs] = m;
    const labels = rawLabels ? parseLabels(rawLabels.slice(1, -1), lineNo, line) : {};
    let value: number;
    try {
      value = parseValue(rawValue);
    } catch (e) {
      throw new PromParseError(lineNo, line, (e as Error).message);
    }
    const fam = familyOf(name, types);
    const f = family(fam, lineNo, line);
    if (f.type === "histogram") {
      if (!/_(bucket|sum|count)$/.test(name) || name === fam) throw new PromParseError(lineNo, line, `histogram ${fam} has a bare sample ${name}`);
      if (name.endsWith("_bucket") && !("le" in labels)) throw new PromParseError(lineNo, line, "bucket without le");
    }
    if ((f.type === "counter" || name.endsWith("_count") || name.endsWith("_bucket")) && !(value >= 0)) {
      throw new PromParseError(lineNo, line, "negative or NaN counter");
    }
    const key = name + JSON.stringify(Object.entries(labels).sort());
    if (seenSeries.has(key)) throw new PromParseError(lineNo, line, "duplicate series");
    seenSeries.add(key);
    f.samples.push({ name, labels, value, ...(rawTs ? { timestamp: Number(rawTs) } : {}) });
  });

  for (const f of families.values()) if (f.type === "histogram") checkHistogram(f);
  return families;
}

function checkHistogram(f: Family): void {
  const groups = new Map<string, { buckets: [number, number][]; count?: number; sum?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const g = groups.get(key) ?? { buckets: [] };
    groups.set(key, g);
    if (s.name.endsWith("_bucket")) g.buckets.push([parseValue(le), s.value]);
    else if (s.name.endsWith("_count")) g.count = s.value;
    else g.sum = s.value;
  }
  for (const [key, g] of groups) {
    const where = `histogram ${f.name}${key}`;
    if (g.count === undefined || g.sum === undefined) throw new Error(`${where}: _sum or _count missing`);
    const sorted = [...g.buckets].sort((a, b) => a[0] - b[0]);
    if (sorted.at(-1)?.[0] !== Infinity) throw new Error(`${where}: no +Inf bucket`);
    for (let i = 1; i < sorted.length; i++) if (sorted[i][1] < sorted[i - 1][1]) throw new Error(`${where}: buckets are not cumulative`);
    if (sorted.at(-1)![1] !== g.count) throw new Error(`${where}: +Inf bucket differs from _count`);
  }
}

/** The value of one series: the sample named `name` (default: the family) whose labels include `labels`. */
export function sampleValue(families: Map<string, Family>, family: string, labels: Record<string, string> = {}, name = family): number | undefined {
  const f = families.get(family);
  const s = f?.samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s?.value;
}

/** Sum over every series of a family's sample `name` whose labels include `labels`. */
export function sampleSum(families: Map<string, Family>, family: string, labels: Record<string, string> = {}, name = family): number {
  const f = families.get(family);
  return (f?.samples ?? [])
    .filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v))
    .reduce((a, x) => a + x.value, 0);
}
