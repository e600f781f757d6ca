// CPU and memory of an app's container from Docker's one-shot stats (no stream), the same
// arithmetic as `docker stats`.

/** The fields of Docker's stats answer that the arithmetic reads (cgroup v1 and v2). */
export interface DockerStats {
  cpu_stats?: { cpu_usage?: { total_usage?: number; percpu_usage?: number[] }; system_cpu_usage?: number; online_cpus?: number };
  precpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number };
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
}

export interface CpuMemory {
  cpuPct: number;
  memoryBytes: number;
  memoryLimitBytes?: number;
}

export function computeUsage(stats: DockerStats): CpuMemory {
  const cpu = stats.cpu_stats;
  const pre = stats.precpu_stats;
  let cpuPct = 0;
  const cpuDelta = (cpu?.cpu_usage?.total_usage ?? 0) - (pre?.cpu_usage?.total_usage ?? 0);
  const systemDelta = (cpu?.system_cpu_usage ?? 0) - (pre?.system_cpu_usage ?? 0);
  const cpus = cpu?.online_cpus || cpu?.cpu_usage?.percpu_usage?.length || 1;
  if (cpuDelta > 0 && systemDelta > 0 && pre?.system_cpu_usage) cpuPct = (cpuDelta / systemDelta) * cpus * 100;

  const mem = stats.memory_stats ?? {};
  const usage = mem.usage ?? 0;
  const s = mem.stats ?? {};
  // Page cache the kernel can drop is not the app's memory: v1 total_inactive_file, v2 inactive_file.
  const inactive = s.total_inactive_file ?? s.inactive_file ?? 0;
  const memoryBytes = Math.max(0, Math.round(inactive < usage ? usage - inactive : usage));
  const out: CpuMemory = { cpuPct: Math.round(cpuPct * 100) / 100, memoryBytes };
  // Without a limit Docker reports the host's memory (or a huge number); pass it on only when sane.
  if (mem.limit && mem.limit > 0 && mem.limit < Number.MAX_SAFE_INTEGER) out.memoryLimitBytes = Math.round(mem.limit);
  return out;
}
