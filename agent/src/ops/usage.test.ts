import { readFileSync } from "node:fs";
import { computeUsage, type DockerStats } from "./usage";

describe("computeUsage", () => {
  it("computes CPU % and memory without page cache like docker stats", () => {
    const stats = JSON.parse(readFileSync(new URL("./fixtures/docker-stats-cgroup-v1.json", import.meta.url), "utf8")) as DockerStats;
    // cpu delta 0.5e9 over system delta 2e9, 2 CPUs → 50 %
    expect(computeUsage(stats)).toEqual({ cpuPct: 50, memoryBytes: 1073741824 - 104857600, memoryLimitBytes: 135089160192 });
  });

  it("is zero for a first sample without precpu data", () => {
    expect(computeUsage({ cpu_stats: { cpu_usage: { total_usage: 5 }, system_cpu_usage: 10, online_cpus: 2 }, precpu_stats: {}, memory_stats: {} })).toEqual({ cpuPct: 0, memoryBytes: 0 });
  });
});
