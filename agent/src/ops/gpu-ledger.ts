// The GPU memory ledger: which app holds how much memory on which GPU. nvidia-smi lists compute
// processes by host pid; /proc/<pid>/cgroup names the container (cgroup v1 and v2 layouts); the
// container's labels (or, for containers made by hand or an older agent, its compose name
// `<app>_app_1` / `<app>-app-1`) name the app. Pure functions; the reading side is readGpuLedger.
import { readFile } from "node:fs/promises";
import type { GpuHolder, GpuLedgerEntry } from "../contract/facts";
import { formatMiB } from "../contract/units";
import { exec as realExec, type Exec } from "./exec";
import { APPS_QUERY, GPU_QUERY, containerIdFromCgroup, parseComputeAppsCsv, parseGpuCsv, type ComputeApp, type GpuRow } from "./nvidia";

/** The app a compose container name stands for: `<project>_app_1` (compose v1) or `<project>-app-1` (v2). */
export function appFromContainerName(name: string): string | null {
  const m = /^\/?([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:_app_\d+|-app-\d+)$/.exec(name);
  return m ? m[1]! : null;
}

export interface ContainerRef {
  id: string;
  names: string[];
  labels: Record<string, string>;
}

/** Container id → app name, from the dcc labels (this host's apps only), else from the compose name. */
export function appsByContainer(containers: ContainerRef[], hostId?: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const c of containers) {
    const labelled = c.labels["dcc.managed"] === "true" && (!hostId || c.labels["dcc.host"] === hostId) ? c.labels["dcc.app"] : undefined;
    const app = labelled ?? c.names.map(appFromContainerName).find((n) => n !== null) ?? null;
    if (app) out.set(c.id, app);
  }
  return out;
}

/** MIG mode per GPU uuid from `nvidia-smi --query-gpu=uuid,mig.mode.current --format=csv,noheader`. */
export function parseMigCsv(text: string): Map<string, boolean> {
  const out = new Map<string, boolean>();
  for (const line of text.split(/\r?\n/)) {
    const [uuid, mode] = line.split(",").map((c) => c.trim());
    if (uuid?.startsWith("GPU-") && mode) out.set(uuid, mode.toLowerCase() === "enabled");
  }
  return out;
}

export interface LedgerInput {
  gpus: GpuRow[];
  processes: ComputeApp[];
  /** pid → full container id (null: not in a container, or unreadable). */
  containerOfPid: (pid: number) => string | null;
  /** full container id → app name. */
  appOfContainer: (id: string) => string | null;
  mig?: Map<string, boolean>;
}

/** Each GPU with its memory (total, used, free) and the processes holding it, largest first. */
export function buildLedger(input: LedgerInput): GpuLedgerEntry[] {
  return input.gpus.slice(0, 64).map((g) => {
    const holders: GpuHolder[] = input.processes
      .filter((p) => p.gpuUuid === g.uuid)
      .map((p) => {
        const container = input.containerOfPid(p.pid);
        return {
          app: container ? input.appOfContainer(container) : null,
          pid: p.pid,
          memoryMiB: p.usedMemoryMiB === undefined ? null : Math.round(p.usedMemoryMiB),
          container: container ? container.slice(0, 12) : null,
        };
      })
      .sort((a, b) => (b.memoryMiB ?? 0) - (a.memoryMiB ?? 0))
      // The wire contract carries at most 256 holders per GPU: the largest ones.
      .slice(0, 256);
    const fromProcesses = holders.reduce((s, h) => s + (h.memoryMiB ?? 0), 0);
    const usedMiB = Math.min(g.memoryMiB, g.memoryUsedMiB ?? fromProcesses);
    const entry: GpuLedgerEntry = { index: g.index, uuid: g.uuid, name: g.name, totalMiB: g.memoryMiB, usedMiB, freeMiB: Math.max(0, g.memoryMiB - usedMiB), holders };
    if (g.utilizationPct !== undefined) entry.utilizationPct = g.utilizationPct;
    const mig = input.mig?.get(g.uuid);
    if (mig !== undefined) entry.mig = mig;
    return entry;
  });
}

/** Memory per app on each GPU: app → { gpu index → MiB }. */
export function memoryByApp(ledger: GpuLedgerEntry[]): Map<string, Map<number, number>> {
  const out = new Map<string, Map<number, number>>();
  for (const g of ledger) {
    for (const h of g.holders) {
      if (!h.app) continue;
      const per = out.get(h.app) ?? new Map<number, number>();
      per.set(g.index, (per.get(g.index) ?? 0) + (h.memoryMiB ?? 0));
      out.set(h.app, per);
    }
  }
  return out;
}

/**
 * Why an app that needs `minMemoryMiB` on each of `devices` cannot start now, naming who holds the
 * memory ("needs 12 GiB, 9.1 GiB free on GPU 0: comfy holds 14.2 GiB"); null when it fits. The app's
 * own processes (a restart) count as free. A device the ledger does not know is not judged.
 */
export function gpuShortfall(ledger: GpuLedgerEntry[], devices: string[], minMemoryMiB: number, self?: string): string | null {
  for (const d of devices) {
    const g = ledger.find((e) => String(e.index) === d || e.uuid === d);
    if (!g) continue;
    const own = g.holders.filter((h) => self && h.app === self).reduce((s, h) => s + (h.memoryMiB ?? 0), 0);
    const free = Math.min(g.totalMiB, g.freeMiB + own);
    if (free >= minMemoryMiB) continue;
    const byHolder = new Map<string, number>();
    for (const h of g.holders) {
      if (self && h.app === self) continue;
      const who = h.app ?? `pid ${h.pid} (not an app)`;
      byHolder.set(who, (byHolder.get(who) ?? 0) + (h.memoryMiB ?? 0));
    }
    const named = [...byHolder].sort((a, b) => b[1] - a[1]).map(([who, mib]) => `${who} holds ${formatMiB(mib)}`);
    return `needs ${formatMiB(minMemoryMiB)}, ${formatMiB(free)} free on GPU ${g.index}${named.length ? `: ${named.join(", ")}` : ""}`;
  }
  return null;
}

/** GPU indexes by free memory, most first, that have at least `minMemoryMiB` free (first fit). */
export function pickDevices(ledger: GpuLedgerEntry[], count: number, minMemoryMiB = 0, exclude: string[] = []): string[] | null {
  const fits = ledger
    .filter((g) => !exclude.includes(String(g.index)) && g.freeMiB >= minMemoryMiB)
    .sort((a, b) => b.freeMiB - a.freeMiB || a.index - b.index)
    .slice(0, count)
    .map((g) => String(g.index));
  return fits.length === count ? fits : null;
}

function smiEnv(): Record<string, string> {
  return { PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", LANG: "C" };
}

export interface LedgerSources {
  run?: Exec;
  readCgroup?: (pid: number) => Promise<string>;
  containers?: () => Promise<ContainerRef[]>;
  hostId?: string;
}

/** The ledger of this host, or null without nvidia-smi. */
export async function readGpuLedger(src: LedgerSources = {}): Promise<GpuLedgerEntry[] | null> {
  const run = src.run ?? realExec;
  const opts = { env: smiEnv(), timeoutMs: 15_000 };
  let gpuText: string;
  let appText: string;
  try {
    [gpuText, appText] = await Promise.all([
      run(["nvidia-smi", `--query-gpu=${GPU_QUERY.join(",")}`, "--format=csv,noheader,nounits"], opts).then((r) => r.stdout),
      run(["nvidia-smi", `--query-compute-apps=${APPS_QUERY.join(",")}`, "--format=csv,noheader,nounits"], opts).then((r) => r.stdout),
    ]);
  } catch {
    return null;
  }
  const migText = await run(["nvidia-smi", "--query-gpu=uuid,mig.mode.current", "--format=csv,noheader"], opts).then((r) => r.stdout).catch(() => "");
  const processes = parseComputeAppsCsv(appText);
  const readCgroup = src.readCgroup ?? ((pid: number) => readFile(`/proc/${pid}/cgroup`, "utf8"));
  const cgroups = new Map<number, string | null>();
  await Promise.all(processes.map(async (p) => cgroups.set(p.pid, await readCgroup(p.pid).then(containerIdFromCgroup, () => null))));
  const byContainer = appsByContainer(src.containers ? await src.containers().catch(() => []) : [], src.hostId);
  return buildLedger({
    gpus: parseGpuCsv(gpuText),
    processes,
    containerOfPid: (pid) => cgroups.get(pid) ?? null,
    appOfContainer: (id) => byContainer.get(id) ?? null,
    mig: parseMigCsv(migText),
  });
}
