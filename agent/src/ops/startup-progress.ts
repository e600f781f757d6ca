// Download progress in an app's own output while it starts: tqdm bars (huggingface_hub, diffusers,
// ComfyUI managers), pip "Downloading … MB", aria2 summaries and git-lfs lines. tqdm redraws its bar
// with `\r`, so a chunk is split on both `\r` and `\n` and every segment is a candidate. Pure: the
// observer feeds it output and throttles what it reports.

export interface StartupProgress {
  /** What is being fetched, e.g. "downloading sd_xl_base_1.0.safetensors". */
  label: string;
  /** 0–100, or null when the output tells only that something is downloading. */
  percent: number | null;
  updatedAt: string;
}

const LABEL_MAX = 200;
// ANSI colour and cursor sequences that tqdm and pip's rich bars put around their text.
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07/g;

function clampPct(n: number): number {
  return Math.max(0, Math.min(100, Math.round(n)));
}

function tidy(label: string): string {
  const t = label.replace(/\s+/g, " ").trim();
  return t.length > LABEL_MAX ? `${t.slice(0, LABEL_MAX - 1)}…` : t;
}

/** The file a path or URL names (its last segment, query dropped). */
function fileOf(text: string): string {
  const noQuery = text.split(/[?#]/)[0] ?? text;
  const parts = noQuery.split("/").filter(Boolean);
  return parts[parts.length - 1] ?? noQuery;
}

const UNITS: Record<string, number> = { b: 1, k: 1e3, kb: 1e3, kib: 1024, m: 1e6, mb: 1e6, mib: 1024 ** 2, g: 1e9, gb: 1e9, gib: 1024 ** 3, t: 1e12, tb: 1e12, tib: 1024 ** 4 };
function bytesOf(value: string, unit: string): number | null {
  const scale = UNITS[unit.toLowerCase()];
  const n = Number(value);
  return scale === undefined || !Number.isFinite(n) ? null : n * scale;
}

/** One segment of output (no `\r` or `\n` in it): the progress it shows, or null. */
export function parseProgressLine(segment: string): Omit<StartupProgress, "updatedAt"> | null {
  const line = segment.replace(ANSI, "").trim();
  if (!line) return null;

  // git-lfs: "Downloading models/sd.safetensors (6.9 GB)" and the summary "Downloading LFS objects:  42% (3/7), 1.2 GB | 20 MB/s".
  let m = /^Downloading LFS objects:\s+(\d{1,3})%/.exec(line);
  if (m) return { label: "downloading LFS objects", percent: clampPct(Number(m[1])) };

  // aria2: "[#2089b0 1.2GiB/6.4GiB(18%) CN:16 DL:120MiB ETA:43s]"
  m = /^\[#[0-9a-f]+\s+[\d.]+\w*\/[\d.]+\w*\((\d{1,3})%\)/.exec(line);
  if (m) return { label: "downloading (aria2)", percent: clampPct(Number(m[1])) };
  // aria2 names the file on its own line: "[NOTICE] Downloading 1 item(s)" / "FILE: /models/x.safetensors".
  m = /^FILE:\s+(\S.*)$/.exec(line);
  if (m) return { label: `downloading ${fileOf(m[1]!)}`, percent: null };

  // tqdm (huggingface_hub, diffusers, torch hub): "sd_xl_base_1.0.safetensors:  42%|████▏     | 2.9G/6.94G [00:31<00:43, 93.1MB/s]"
  // and without a description: " 42%|████▏     | 2.9G/6.94G [...]".
  m = /^(?:(.*?):\s*)?(\d{1,3})%\|.*\|/.exec(line);
  if (m) {
    const desc = (m[1] ?? "").trim();
    // "Fetching 12 files" / "Downloading shards" already say what happens; a bare name is a download.
    const label = !desc ? "downloading" : /^(fetching|downloading|loading)\b/i.test(desc) ? desc.charAt(0).toLowerCase() + desc.slice(1) : `downloading ${desc}`;
    return { label: tidy(label), percent: clampPct(Number(m[2])) };
  }
  // pip with its own bar: "   ━━━━━━━━━━━━━━━━━━━━ 1.2/2.5 GB 40.1 MB/s eta 0:00:33"
  m = /^[━╸╺\-─ ]+\s([\d.]+)\/([\d.]+)\s+(k?B|KB|MB|GB|kB)\b/.exec(line);
  if (m) {
    const done = Number(m[1]);
    const total = Number(m[2]);
    return { label: "pip downloading", percent: total > 0 ? clampPct((done / total) * 100) : null };
  }
  // pip: "Downloading torch-2.3.0-cp310-cp310-manylinux1_x86_64.whl (779.1 MB)" or with a URL.
  m = /^Downloading\s+(\S+)(?:\s+\(([\d.]+)\s*([kMG]?B)\))?/.exec(line);
  if (m) {
    const size = m[2] && m[3] ? ` (${m[2]} ${m[3]})` : "";
    return { label: `downloading ${fileOf(m[1]!)}${size}`, percent: null };
  }
  // huggingface_hub / wget style without a bar: "Downloading: 42% of model.safetensors", or "Fetching 12 files:  33%".
  m = /^(Fetching \d+ files?)\s*:?\s+(\d{1,3})%/.exec(line);
  if (m) return { label: m[1]!.charAt(0).toLowerCase() + m[1]!.slice(1), percent: clampPct(Number(m[2])) };
  // curl/wget style byte counts: "1.2G/6.9G" after "downloading <file>" are covered by tqdm; a plain "x MB / y MB" too:
  m = /(?:^|\s)([\d.]+)\s*(MB|GB|MiB|GiB)\s*\/\s*([\d.]+)\s*(MB|GB|MiB|GiB)\b/.exec(line);
  if (m && /download/i.test(line)) {
    const done = bytesOf(m[1]!, m[2]!);
    const total = bytesOf(m[3]!, m[4]!);
    return { label: tidy(line.slice(0, m.index).trim() || "downloading"), percent: done !== null && total ? clampPct((done / total) * 100) : null };
  }
  return null;
}

/**
 * Folds an app's output into its newest download progress. `push` takes raw chunks (partial lines
 * allowed) and answers whether the figure changed.
 */
export class StartupProgressParser {
  private partial = "";
  private current: StartupProgress | null = null;

  constructor(private readonly now: () => number = Date.now) {}

  push(chunk: string): boolean {
    const text = this.partial + chunk;
    const segments = text.split(/\r\n|\r|\n/);
    this.partial = segments.pop() ?? "";
    if (this.partial.length > 4096) this.partial = this.partial.slice(-4096);
    let changed = false;
    for (const s of segments) {
      const found = parseProgressLine(s);
      if (found) changed = this.set(found) || changed;
    }
    // tqdm writes `\r` before each redraw, so the bar on screen is the unfinished segment: read it
    // once its percent and bar are complete (`NN%|…|`); other unfinished text may still grow.
    if (/\d%\|.*\|/.test(this.partial)) {
      const found = parseProgressLine(this.partial);
      if (found) changed = this.set(found) || changed;
    }
    return changed;
  }

  get(): StartupProgress | null {
    return this.current;
  }

  reset(): void {
    this.partial = "";
    this.current = null;
  }

  private set(p: Omit<StartupProgress, "updatedAt">): boolean {
    const label = tidy(p.label);
    if (this.current && this.current.label === label && this.current.percent === p.percent) return false;
    this.current = { label, percent: p.percent, updatedAt: new Date(this.now()).toISOString() };
    return true;
  }
}
