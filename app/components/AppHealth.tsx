import { lightOf } from "./StatusLight";
import type { LiveChange } from "./useLiveApps";

/** One usage sample as the live stream's `usage` events carry it. */
export interface UsageSample {
  at: number;
  cpuPct?: number;
  memoryBytes?: number;
  memoryLimitBytes?: number;
  gpuUtilPct?: number;
  gpuMemoryMiB?: number;
}

/** Samples the page keeps (the agent reports about every 10 s: ten minutes). */
export const MAX_SAMPLES = 60;

export function usageSample(usage: unknown, at = Date.now()): UsageSample | null {
  if (!usage || typeof usage !== "object") return null;
  const u = usage as Record<string, unknown>;
  const num = (k: string) => (typeof u[k] === "number" && Number.isFinite(u[k]) ? (u[k] as number) : undefined);
  const s: UsageSample = { at, cpuPct: num("cpuPct"), memoryBytes: num("memoryBytes"), memoryLimitBytes: num("memoryLimitBytes"), gpuUtilPct: num("gpuUtilPct"), gpuMemoryMiB: num("gpuMemoryMiB") };
  return s.cpuPct === undefined && s.memoryBytes === undefined ? null : s;
}

export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n >= 100 || i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}

/** Polyline points of the values across `w`, scaled to `max` (or their peak); the y axis starts at zero. */
function sparkPoints(values: number[], w: number, h: number, max?: number): string[] {
  const top = Math.max(max ?? 0, ...values, 1e-9);
  const step = values.length > 1 ? w / (values.length - 1) : 0;
  return values.map((v, i) => `${(i * step).toFixed(1)},${(h - 2 - (v / top) * (h - 4)).toFixed(1)}`);
}

/** A table-cell sized line (no caption): the dashboard's per-app CPU trend. */
export function MiniSpark({ values, label }: { values: number[]; label: string }) {
  const w = 64;
  const h = 16;
  if (values.length < 2) return null;
  return (
    <svg viewBox={`0 0 ${w} ${h}`} width={w} height={h} className="mini-spark" role="img" aria-label={label}>
      <polyline points={sparkPoints(values, w, h).join(" ")} className="spark-line" />
    </svg>
  );
}

/** A small inline SVG line of the values, scaled to `max` (or their peak). */
export function Sparkline({ values, max, label, current }: { values: number[]; max?: number; label: string; current: string }) {
  const w = 160;
  const h = 36;
  const pts = sparkPoints(values, w, h, max);
  const peak = values.length ? Math.max(...values) : 0;
  return (
    <figure className="spark">
      <figcaption>
        <span className="spark-label">{label}</span> <strong className="spark-value">{current}</strong>
      </figcaption>
      <svg viewBox={`0 0 ${w} ${h}`} width="100%" height={h} preserveAspectRatio="none" role="img" aria-label={`${label}: now ${current}, ${values.length} samples`} data-samples={values.length}>
        <line x1="0" y1={h - 1} x2={w} y2={h - 1} className="spark-axis" />
        {values.length > 1 ? <polygon points={`0,${h - 1} ${pts.join(" ")} ${w},${h - 1}`} className="spark-area" /> : null}
        {values.length > 1 ? <polyline points={pts.join(" ")} className="spark-line" /> : null}
        {values.length === 1 ? <circle cx={w - 2} cy={pts[0]!.split(",")[1]} r="2" className="spark-dot" /> : null}
      </svg>
      {values.length ? <span className="sr-only">peak {peak.toFixed(1)}</span> : null}
    </figure>
  );
}

export function ResourceCharts({ samples }: { samples: UsageSample[] }) {
  const cpu = samples.filter((s) => s.cpuPct !== undefined).map((s) => s.cpuPct!);
  const mem = samples.filter((s) => s.memoryBytes !== undefined);
  const gpu = samples.filter((s) => s.gpuUtilPct !== undefined).map((s) => s.gpuUtilPct!);
  const lastMem = mem.at(-1);
  if (!samples.length) return <p className="hint">No usage samples yet: the agent reports CPU and memory about every 10 seconds while the app runs.</p>;
  return (
    <div className="sparks">
      <Sparkline label="CPU" values={cpu} current={cpu.length ? `${cpu.at(-1)!.toFixed(1)} %` : "—"} />
      <Sparkline
        label="Memory"
        values={mem.map((s) => s.memoryBytes!)}
        current={lastMem ? `${formatBytes(lastMem.memoryBytes!)}${lastMem.memoryLimitBytes ? ` of ${formatBytes(lastMem.memoryLimitBytes)}` : ""}` : "—"}
      />
      {gpu.length ? <Sparkline label="GPU" values={gpu} max={100} current={`${gpu.at(-1)!.toFixed(0)} %`} /> : null}
    </div>
  );
}

interface Span {
  at: string;
  status: string;
  health: string;
}

/** Status and health over time, from the timeline's status events (newest first in, oldest first out). */
export function healthSpans(timeline: LiveChange[], current: { status: string; health: string }): Span[] {
  const spans: Span[] = [];
  let status: string | undefined;
  let health = "unknown";
  for (const e of [...timeline].reverse()) {
    if (e.type !== "status" && e.type !== "created") continue;
    if (typeof e.status === "string") status = e.status;
    if (typeof e.health === "string") health = e.health;
    if (!status || !e.at) continue;
    const prev = spans.at(-1);
    if (prev && prev.status === status && prev.health === health) continue;
    spans.push({ at: String(e.at), status, health });
  }
  const prev = spans.at(-1);
  if (!prev || prev.status !== current.status || prev.health !== current.health) spans.push({ at: new Date().toISOString(), ...current });
  return spans;
}

const clock = (at: string) => new Date(at).toISOString().replace("T", " ").slice(0, 19);

export function HealthHistory({ timeline, current }: { timeline: LiveChange[]; current: { status: string; health: string } }) {
  const spans = healthSpans(timeline, current);
  const start = Date.parse(spans[0]!.at);
  const end = Math.max(Date.now(), start + 1);
  return (
    <div className="health-history">
      <div className="health-bar" aria-hidden="true">
        {spans.map((s, i) => {
          const from = Date.parse(s.at);
          const to = i + 1 < spans.length ? Date.parse(spans[i + 1]!.at) : end;
          return <span key={i} className={`seg seg-${lightOf({ status: s.status as never, health: s.health as never })}`} style={{ flexGrow: Math.max(to - from, (end - start) / 200) }} title={`${s.status} · ${s.health} from ${clock(s.at)}`} />;
        })}
      </div>
      <ol className="health-list" aria-label="Status and health changes, newest first">
        {[...spans]
          .reverse()
          .slice(0, 8)
          .map((s, i) => (
            <li key={i}>
              <span className={`dot-inline seg-${lightOf({ status: s.status as never, health: s.health as never })}`} aria-hidden="true" />
              <time className="muted small" dateTime={s.at}>
                {clock(s.at)}
              </time>{" "}
              <strong>{s.status}</strong> <span className="small">{s.health}</span>
            </li>
          ))}
      </ol>
    </div>
  );
}
