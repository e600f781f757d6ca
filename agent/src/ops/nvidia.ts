// NVIDIA GPUs from nvidia-smi's CSV output: the host's inventory (HostFacts.nvidia) and the GPU
// memory each app's processes hold. Parsers are pure; reading runs nvidia-smi through exec.
import { readFile } from "node:fs/promises";
import type { GpuInfo, HostFacts } from "../contract/facts";
import { exec as realExec, type Exec } from "./exec";

export const GPU_QUERY = ["index", "uuid", "name", "memory.total", "memory.used", "utilization.gpu", "driver_version"];
export const APPS_QUERY = ["pid", "used_memory", "gpu_uuid"];

export interface GpuRow extends GpuInfo {
  driverVersion?: string;
}

export interface ComputeApp {
  pid: number;
  usedMemoryMiB: number | undefined;
  gpuUuid: string;
}

function cells(line: string): string[] {
  return line.split(",").map((c) => c.trim());
}

/** A number from a cell such as `81920`, `81920 MiB`, `12 %`; undefined for `[N/A]`, `[Not Supported]`. */
function num(cell: string | undefined): number | undefined {
  if (cell === undefined) return undefined;
  const m = /^(-?\d+(?:\.\d+)?)\s*(?:MiB|%|W)?$/.exec(cell.trim());
  return m ? Number(m[1]) : undefined;
}

function dataLines(text: string, firstHeader: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.toLowerCase().startsWith(firstHeader) && !/^no running/i.test(l));
}

/** Parses `nvidia-smi --query-gpu=index,uuid,name,memory.total,memory.used,utilization.gpu,driver_version --format=csv[,noheader][,nounits]`. */
export function parseGpuCsv(text: string): GpuRow[] {
  const rows: GpuRow[] = [];
  for (const line of dataLines(text, "index")) {
    const c = cells(line);
    if (c.length < 7) continue;
    // The name is the one free-text column: take the fixed columns from both ends.
    const [indexCell, uuid] = c;
    const tail = c.slice(-4);
    const name = c.slice(2, c.length - 4).join(", ");
    const index = num(indexCell);
    const memoryMiB = num(tail[0]);
    if (index === undefined || !uuid?.startsWith("GPU-") || memoryMiB === undefined) continue;
    const row: GpuRow = { index, uuid, name, memoryMiB: Math.round(memoryMiB) };
    const used = num(tail[1]);
    const util = num(tail[2]);
    if (used !== undefined) row.memoryUsedMiB = Math.round(used);
    if (util !== undefined) row.utilizationPct = Math.min(100, Math.max(0, util));
    if (tail[3] && !tail[3].startsWith("[")) row.driverVersion = tail[3];
    rows.push(row);
  }
  return rows;
}

/** Parses `nvidia-smi --query-compute-apps=pid,used_memory,gpu_uuid --format=csv[,noheader][,nounits]`. */
export function parseComputeAppsCsv(text: string): ComputeApp[] {
  const out: ComputeApp[] = [];
  for (const line of dataLines(text, "pid")) {
    const [pidCell, memCell, gpuUuid] = cells(line);
    const pid = num(pidCell);
    if (pid === undefined || !gpuUuid?.startsWith("GPU-")) continue;
    out.push({ pid, usedMemoryMiB: num(memCell), gpuUuid });
  }
  return out;
}

/** The Docker container id in a /proc/<pid>/cgroup file (cgroupfs v1 or systemd/v2 layouts). */
export function containerIdFromCgroup(text: string): string | null {
  const m = /(?:\/docker\/|docker-|\/docker-ce\/docker\/|crio-|containerd-)([0-9a-f]{64})(?:\.scope)?/.exec(text);
  return m ? m[1]! : null;
}

export interface AppGpuUsage {
  gpuMemoryMiB: number;
  gpuUtilPct?: number;
}

/**
 * GPU memory per container: the sum over its processes; utilisation: the busiest GPU it uses
 * (nvidia-smi has no per-process utilisation in this query).
 */
export function gpuUsageByContainer(
  apps: ComputeApp[],
  gpus: GpuRow[],
  containerOf: (pid: number) => string | null,
): Map<string, AppGpuUsage> {
  const util = new Map(gpus.map((g) => [g.uuid, g.utilizationPct]));
  const out = new Map<string, AppGpuUsage>();
  for (const app of apps) {
    const id = containerOf(app.pid);
    if (!id) continue;
    const entry = out.get(id) ?? { gpuMemoryMiB: 0 };
    entry.gpuMemoryMiB += app.usedMemoryMiB ?? 0;
    const u = util.get(app.gpuUuid);
    if (u !== undefined) entry.gpuUtilPct = Math.max(entry.gpuUtilPct ?? 0, u);
    out.set(id, entry);
  }
  return out;
}

function smiEnv(): Record<string, string> {
  return { PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", LANG: "C" };
}

/** Host GPUs via nvidia-smi; null when nvidia-smi is absent or fails (no NVIDIA driver). */
export async function readNvidiaFacts(runtime: boolean, run: Exec = realExec): Promise<HostFacts["nvidia"]> {
  let text: string;
  try {
    text = (await run(["nvidia-smi", `--query-gpu=${GPU_QUERY.join(",")}`, "--format=csv,noheader,nounits"], { env: smiEnv(), timeoutMs: 15_000 })).stdout;
  } catch {
    return null;
  }
  const rows = parseGpuCsv(text);
  const driverVersion = rows.find((r) => r.driverVersion)?.driverVersion;
  const gpus: GpuInfo[] = rows.map(({ driverVersion: _d, ...g }) => g);
  return { runtime, ...(driverVersion ? { driverVersion } : {}), gpus };
}

/** GPU memory and utilisation per container id, or an empty map without nvidia-smi. */
export async function readGpuUsage(run: Exec = realExec): Promise<Map<string, AppGpuUsage>> {
  try {
    const [gpuText, appText] = await Promise.all([
      run(["nvidia-smi", `--query-gpu=${GPU_QUERY.join(",")}`, "--format=csv,noheader,nounits"], { env: smiEnv(), timeoutMs: 15_000 }),
      run(["nvidia-smi", `--query-compute-apps=${APPS_QUERY.join(",")}`, "--format=csv,noheader,nounits"], { env: smiEnv(), timeoutMs: 15_000 }),
    ]);
    const apps = parseComputeAppsCsv(appText.stdout);
    const cgroups = new Map<number, string | null>();
    await Promise.all(
      apps.map(async (a) => {
        try {
          cgroups.set(a.pid, containerIdFromCgroup(await readFile(`/proc/${a.pid}/cgroup`, "utf8")));
        } catch {
          cgroups.set(a.pid, null);
        }
      }),
    );
    return gpuUsageByContainer(apps, parseGpuCsv(gpuText.stdout), (pid) => cgroups.get(pid) ?? null);
  } catch {
    return new Map();
  }
}
