// The OSV API as the dependency check uses it (https://google.github.io/osv.dev/api/): a batched
// `POST /v1/querybatch` answering vulnerability ids per package version, then `GET /v1/vulns/<id>`
// for each advisory's details. Plus the pure readings of an advisory: its severity (CVSS base score
// where a vector is given, else the database's own word) and the version that fixes a package.
import cvss from "ae-cvss-calculator";
import type { Severity } from "../../db/schema";

export interface OsvQuery {
  ecosystem: string;
  name: string;
  version: string;
}

export interface OsvEvent {
  introduced?: string;
  fixed?: string;
  last_affected?: string;
  limit?: string;
}

export interface OsvRecord {
  id: string;
  modified?: string;
  aliases?: string[];
  summary?: string;
  details?: string;
  severity?: { type: string; score: string }[];
  affected?: {
    package?: { ecosystem?: string; name?: string };
    severity?: { type: string; score: string }[];
    ranges?: { type: string; events?: OsvEvent[] }[];
    versions?: string[];
    ecosystem_specific?: Record<string, unknown>;
    database_specific?: Record<string, unknown>;
  }[];
  database_specific?: Record<string, unknown>;
}

export class OsvError extends Error {}

/** The largest batch OSV accepts in one querybatch call. */
const BATCH = 1000;
const TIMEOUT_MS = 15_000;

async function call<T>(url: string, init?: RequestInit): Promise<T> {
  let r: Response;
  try {
    r = await fetch(url, { ...init, signal: AbortSignal.timeout(TIMEOUT_MS), headers: { "content-type": "application/json", accept: "application/json" } });
  } catch (e) {
    throw new OsvError(`OSV unreachable: ${(e as Error).message}`);
  }
  if (!r.ok) throw new OsvError(`OSV answered ${r.status} for ${new URL(url).pathname}`);
  return (await r.json()) as T;
}

/** Vulnerability ids (with modified times) per query, in query order. */
export async function osvQueryBatch(base: string, queries: OsvQuery[]): Promise<{ id: string; modified?: string }[][]> {
  const out: { id: string; modified?: string }[][] = [];
  for (let i = 0; i < queries.length; i += BATCH) {
    const slice = queries.slice(i, i + BATCH);
    const body = JSON.stringify({ queries: slice.map((q) => ({ package: { ecosystem: q.ecosystem, name: q.name }, version: q.version })) });
    const r = await call<{ results?: { vulns?: { id: string; modified?: string }[] }[] }>(`${base}/v1/querybatch`, { method: "POST", body });
    if (!Array.isArray(r.results) || r.results.length !== slice.length) throw new OsvError("OSV querybatch answered the wrong number of results");
    for (const res of r.results) out.push(Array.isArray(res?.vulns) ? res.vulns.filter((v) => typeof v?.id === "string") : []);
  }
  return out;
}

export async function osvVuln(base: string, id: string): Promise<OsvRecord> {
  const rec = await call<OsvRecord>(`${base}/v1/vulns/${encodeURIComponent(id)}`);
  if (rec?.id !== id) throw new OsvError(`OSV answered another record for ${id}`);
  return rec;
}

// ---------------------------------------------------------------------------------------------
// Severity

export function severityOfScore(score: number): Severity {
  if (score >= 9) return "critical";
  if (score >= 7) return "high";
  if (score >= 4) return "medium";
  if (score > 0) return "low";
  return "unknown";
}

/** CVSS v2, v3.x or v4 base score of a vector; null when it cannot be read. */
export function cvssScore(vector: string): number | null {
  try {
    const v = cvss.fromVector(vector);
    const s = v?.calculateScores().base;
    return typeof s === "number" && Number.isFinite(s) ? s : null;
  } catch {
    return null;
  }
}

const WORDS: Record<string, Severity> = { critical: "critical", high: "high", moderate: "medium", medium: "medium", low: "low" };

/**
 * The highest CVSS base score among the record's vectors (and the affected package's own) maps to
 * low / medium / high / critical (FIRST's bands); without a readable vector, the database's own
 * severity word (GitHub: LOW, MODERATE, HIGH, CRITICAL) is used; else unknown.
 */
export function severityOf(rec: OsvRecord, pkg?: { ecosystem: string; name: string }): { severity: Severity; score: number | null } {
  const affected = pkg ? matchingAffected(rec, pkg) : [];
  const vectors = [...(rec.severity ?? []), ...affected.flatMap((a) => a.severity ?? [])];
  let best: number | null = null;
  for (const v of vectors) {
    if (!/^CVSS_V[234]$/.test(v?.type ?? "") || typeof v.score !== "string") continue;
    const s = cvssScore(v.score);
    if (s !== null && (best === null || s > best)) best = s;
  }
  if (best !== null) return { severity: severityOfScore(best), score: best };
  const words = [rec.database_specific?.severity, ...affected.flatMap((a) => [a.ecosystem_specific?.severity, a.database_specific?.severity])];
  for (const w of words) {
    const sev = typeof w === "string" ? WORDS[w.toLowerCase()] : undefined;
    if (sev) return { severity: sev, score: null };
  }
  return { severity: "unknown", score: null };
}

// ---------------------------------------------------------------------------------------------
// Fixed version

const normalize = (ecosystem: string, name: string) => (ecosystem === "PyPI" ? name.toLowerCase().replace(/[-_.]+/g, "-") : name);

function matchingAffected(rec: OsvRecord, pkg: { ecosystem: string; name: string }) {
  return (rec.affected ?? []).filter(
    (a) => a.package?.ecosystem === pkg.ecosystem && normalize(pkg.ecosystem, a.package?.name ?? "") === normalize(pkg.ecosystem, pkg.name),
  );
}

/**
 * Orders versions well enough to pick a fix (PEP 440 and semver alike): the numeric release part
 * first, then a pre-release (a, b, rc, -alpha) before the release and a post-release after it.
 */
export function compareVersions(a: string, b: string): number {
  const split = (v: string) => {
    const m = /^v?(\d+(?:\.\d+)*)(.*)$/.exec(v.trim());
    return m ? { rel: m[1]!.split(".").map(Number), rest: m[2]!.toLowerCase() } : { rel: [], rest: v };
  };
  const x = split(a);
  const y = split(b);
  for (let i = 0; i < Math.max(x.rel.length, y.rel.length); i++) {
    const d = (x.rel[i] ?? 0) - (y.rel[i] ?? 0);
    if (d) return Math.sign(d);
  }
  const rank = (rest: string) => (!rest ? 0 : /^[.-]?(post|rev|r)(\d+|$)|^\+/.test(rest) ? 1 : -1);
  const r = rank(x.rest) - rank(y.rest);
  if (r) return Math.sign(r);
  return x.rest < y.rest ? -1 : x.rest > y.rest ? 1 : 0;
}

/** The version that fixes `version` of the package: the end of the affected range that holds it, else the lowest later fix. */
export function fixedVersionFor(rec: OsvRecord, pkg: { ecosystem: string; name: string; version: string }): string | null {
  const fixes: string[] = [];
  for (const a of matchingAffected(rec, pkg)) {
    for (const range of a.ranges ?? []) {
      if (range.type !== "ECOSYSTEM" && range.type !== "SEMVER") continue;
      let introduced: string | null = null;
      for (const e of range.events ?? []) {
        if (e.introduced !== undefined) introduced = e.introduced;
        if (e.fixed !== undefined) {
          fixes.push(e.fixed);
          const after = introduced === null || introduced === "0" || compareVersions(pkg.version, introduced) >= 0;
          if (after && compareVersions(pkg.version, e.fixed) < 0) return e.fixed;
        }
      }
    }
  }
  const later = fixes.filter((f) => compareVersions(f, pkg.version) > 0).sort(compareVersions);
  return later[0] ?? null;
}

/** Where a person reads the advisory. */
export const advisoryUrl = (id: string) => `https://osv.dev/vulnerability/${encodeURIComponent(id)}`;
