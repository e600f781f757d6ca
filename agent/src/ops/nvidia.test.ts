import { readFileSync } from "node:fs";
import { containerIdFromCgroup, gpuUsageByContainer, parseComputeAppsCsv, parseGpuCsv } from "./nvidia";

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8");

describe("nvidia-smi parsers", () => {
  it("parses --query-gpu with noheader,nounits", () => {
    const gpus = parseGpuCsv(fixture("nvidia-smi-query-gpu-2xA100.txt"));
    expect(gpus).toEqual([
      { index: 0, uuid: "GPU-4b2e7c1a-9f3d-6e8b-1a2c-3d4e5f6a7b8c", name: "NVIDIA A100-SXM4-80GB", memoryMiB: 81920, memoryUsedMiB: 40313, utilizationPct: 87, driverVersion: "535.104.05" },
      { index: 1, uuid: "GPU-a1c9d2e3-7b6f-4a5e-8d9c-0b1a2c3d4e5f", name: "NVIDIA A100-SXM4-80GB", memoryMiB: 81920, memoryUsedMiB: 4, utilizationPct: 0, driverVersion: "535.104.05" },
    ]);
  });

  it("parses the header-and-units form and [N/A] cells", () => {
    const gpus = parseGpuCsv(fixture("nvidia-smi-query-gpu-header-units.txt"));
    expect(gpus).toHaveLength(2);
    expect(gpus[0]).toMatchObject({ index: 0, name: "NVIDIA GeForce RTX 4090", memoryMiB: 24564, memoryUsedMiB: 18231, utilizationPct: 99 });
    expect(gpus[1]).toMatchObject({ index: 1, name: "NVIDIA H100 80GB HBM3", memoryMiB: 81559, memoryUsedMiB: 0 });
    expect(gpus[1]!.utilizationPct).toBeUndefined();
  });

  it("keeps a GPU name that contains a comma", () => {
    const [gpu] = parseGpuCsv("0, GPU-11111111-2222-3333-4444-555555555555, Tesla T4, rev A, 15360, 0, 0, 535.54.03\n");
    expect(gpu).toMatchObject({ name: "Tesla T4, rev A", memoryMiB: 15360 });
  });

  it("parses --query-compute-apps", () => {
    const apps = parseComputeAppsCsv(fixture("nvidia-smi-compute-apps.txt"));
    expect(apps).toHaveLength(4);
    expect(apps[0]).toEqual({ pid: 2417733, usedMemoryMiB: 40298, gpuUuid: "GPU-4b2e7c1a-9f3d-6e8b-1a2c-3d4e5f6a7b8c" });
    expect(apps[3]!.usedMemoryMiB).toBeUndefined();
    expect(parseComputeAppsCsv(fixture("nvidia-smi-compute-apps-header-units.txt"))).toEqual([
      { pid: 88213, usedMemoryMiB: 18112, gpuUuid: "GPU-d3c2b1a0-5e4f-7a6b-9c8d-1e0f2a3b4c5d" },
    ]);
    expect(parseComputeAppsCsv(fixture("nvidia-smi-compute-apps-empty.txt"))).toEqual([]);
  });

  it("finds the container of a process in cgroup v1 and v2 layouts", () => {
    expect(containerIdFromCgroup(fixture("proc-cgroup-v1.txt"))).toBe("3f4e9b2c1d0a8f7e6d5c4b3a29181716151413121110090807060504030201ab");
    expect(containerIdFromCgroup(fixture("proc-cgroup-v2-systemd.txt"))).toBe("9a8b7c6d5e4f30211203948576a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8");
    expect(containerIdFromCgroup("0::/user.slice/user-1000.slice/session-2.scope\n")).toBeNull();
  });

  it("sums GPU memory per container and takes the busiest GPU's utilisation", () => {
    const gpus = parseGpuCsv(fixture("nvidia-smi-query-gpu-2xA100.txt"));
    const apps = parseComputeAppsCsv(fixture("nvidia-smi-compute-apps.txt"));
    const owner: Record<number, string> = { 2417733: "c1", 2418102: "c1", 2419001: "c2", 3001122: "c2" };
    const usage = gpuUsageByContainer(apps, gpus, (pid) => owner[pid] ?? null);
    expect(usage.get("c1")).toEqual({ gpuMemoryMiB: 41322, gpuUtilPct: 87 });
    expect(usage.get("c2")).toEqual({ gpuMemoryMiB: 15010, gpuUtilPct: 0 });
  });
});
