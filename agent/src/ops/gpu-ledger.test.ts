import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { appFromContainerName, appsByContainer, buildLedger, gpuShortfall, memoryByApp, parseMigCsv, pickDevices, readGpuLedger } from "./gpu-ledger";
import { cudaMismatch, parseDriverInfo } from "./preflight";
import { containerIdFromCgroup, parseComputeAppsCsv, parseGpuCsv } from "./nvidia";
import type { Exec } from "./exec";

const fx = (name: string) => readFileSync(join(import.meta.dirname, "fixtures", name), "utf8");
const V1_ID = "3f4e9b2c1d0a8f7e6d5c4b3a29181716151413121110090807060504030201ab";
const V2_ID = "9a8b7c6d5e4f30211203948576a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8";
const V2FS_ID = "5c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d";

describe("container of a GPU process", () => {
  it("reads cgroup v1, v2 (systemd and cgroupfs drivers) and host processes", () => {
    expect(containerIdFromCgroup(fx("proc-cgroup-v1.txt"))).toBe(V1_ID);
    expect(containerIdFromCgroup(fx("proc-cgroup-v2-systemd.txt"))).toBe(V2_ID);
    expect(containerIdFromCgroup(fx("proc-cgroup-v2-cgroupfs.txt"))).toBe(V2FS_ID);
    expect(containerIdFromCgroup(fx("proc-cgroup-host.txt"))).toBeNull();
  });

  it("names the app by label, else by compose v1 and v2 container names", () => {
    expect(appFromContainerName("/comfy_app_1")).toBe("comfy");
    expect(appFromContainerName("/sd-webui-app-1")).toBe("sd-webui");
    expect(appFromContainerName("/random_name")).toBeNull();
    const map = appsByContainer(
      [
        { id: V1_ID, names: ["/whatever"], labels: { "dcc.managed": "true", "dcc.app": "comfy", "dcc.host": "h1" } },
        { id: V2_ID, names: ["/forge-app-1"], labels: {} },
        { id: V2FS_ID, names: ["/a1111_app_1"], labels: { "dcc.managed": "true", "dcc.app": "other", "dcc.host": "h2" } },
      ],
      "h1",
    );
    expect(Object.fromEntries(map)).toEqual({ [V1_ID]: "comfy", [V2_ID]: "forge", [V2FS_ID]: "a1111" });
  });
});

describe("GPU ledger", () => {
  const cgroups: Record<number, string> = { 2417733: fx("proc-cgroup-v1.txt"), 2418102: fx("proc-cgroup-v1.txt"), 2419001: fx("proc-cgroup-v2-systemd.txt") };
  const ledger = buildLedger({
    gpus: parseGpuCsv(fx("nvidia-smi-query-gpu-2xA100.txt")),
    processes: parseComputeAppsCsv(fx("nvidia-smi-compute-apps.txt")),
    containerOfPid: (pid) => (cgroups[pid] ? containerIdFromCgroup(cgroups[pid]!) : null),
    appOfContainer: (id) => ({ [V1_ID]: "comfy", [V2_ID]: "forge" })[id] ?? null,
    mig: parseMigCsv(fx("nvidia-smi-mig-mode.txt")),
  });

  it("splits each GPU's memory by app (driver 535, two A100s)", () => {
    expect(ledger.map((g) => [g.index, g.totalMiB, g.usedMiB, g.freeMiB, g.mig])).toEqual([
      [0, 81920, 40313, 41607, false],
      [1, 81920, 4, 81916, undefined],
    ]);
    expect(ledger[0]!.holders).toEqual([
      { app: "comfy", pid: 2417733, memoryMiB: 40298, container: V1_ID.slice(0, 12) },
      { app: "comfy", pid: 2418102, memoryMiB: 1024, container: V1_ID.slice(0, 12) },
    ]);
    // A process outside any container, with memory nvidia-smi does not tell.
    expect(ledger[1]!.holders).toEqual([
      { app: "forge", pid: 2419001, memoryMiB: 15010, container: V2_ID.slice(0, 12) },
      { app: null, pid: 3001122, memoryMiB: null, container: null },
    ]);
    expect(Object.fromEntries([...memoryByApp(ledger)].map(([a, m]) => [a, Object.fromEntries(m)]))).toEqual({ comfy: { 0: 41322 }, forge: { 1: 15010 } });
  });

  it("has GPUs with no holders when no process runs (driver 550, header and units)", () => {
    const l = buildLedger({ gpus: parseGpuCsv(fx("nvidia-smi-query-gpu-header-units.txt")), processes: parseComputeAppsCsv(fx("nvidia-smi-compute-apps-empty.txt")), containerOfPid: () => null, appOfContainer: () => null });
    expect(l.map((g) => [g.name, g.freeMiB, g.holders.length])).toEqual([
      ["NVIDIA GeForce RTX 4090", 24564 - 18231, 0],
      ["NVIDIA H100 80GB HBM3", 81559, 0],
    ]);
  });

  it("keeps MIG GPUs whose processes have no per-process memory (driver 560)", () => {
    const l = buildLedger({
      gpus: parseGpuCsv(fx("nvidia-smi-query-gpu-h100-mig.txt")),
      processes: parseComputeAppsCsv(fx("nvidia-smi-compute-apps-mig.txt")),
      containerOfPid: () => V2FS_ID,
      appOfContainer: () => "llm",
      mig: parseMigCsv(fx("nvidia-smi-mig-mode.txt")),
    });
    expect(l[0]).toMatchObject({ mig: true, usedMiB: 10240, freeMiB: 71319, holders: [{ app: "llm", memoryMiB: null }] });
    expect(l[0]!.utilizationPct).toBeUndefined();
  });

  it("refuses a start that does not fit, naming who holds the memory", () => {
    // GPU 0 has 40.6 GiB free; comfy holds 40.4 GiB of it.
    expect(gpuShortfall(ledger, ["0"], 48 * 1024)).toBe("needs 48 GiB, 40.6 GiB free on GPU 0: comfy holds 40.4 GiB");
    expect(gpuShortfall(ledger, ["1"], 12 * 1024)).toBeNull();
    expect(gpuShortfall(ledger, ["1"], 80 * 1024)).toBe("needs 80 GiB, 80 GiB free on GPU 1: forge holds 14.7 GiB, pid 3001122 (not an app) holds 0 MiB");
    // The app's own memory is free for its own restart.
    expect(gpuShortfall(ledger, ["0"], 48 * 1024, "comfy")).toBeNull();
    // An unknown device is not judged.
    expect(gpuShortfall(ledger, ["7"], 1_000_000)).toBeNull();
  });

  it("picks devices first fit by free memory", () => {
    expect(pickDevices(ledger, 1)).toEqual(["1"]);
    expect(pickDevices(ledger, 2)).toEqual(["1", "0"]);
    expect(pickDevices(ledger, 1, 50_000, ["1"])).toBeNull();
    expect(pickDevices(ledger, 1, 40_000, ["1"])).toEqual(["0"]);
  });

  it("reads the ledger through nvidia-smi, /proc and the container list", async () => {
    const run: Exec = async (argv) => {
      const q = argv[1]!;
      const stdout = q.startsWith("--query-compute-apps") ? fx("nvidia-smi-compute-apps.txt") : q.includes("mig.mode") ? fx("nvidia-smi-mig-mode.txt") : fx("nvidia-smi-query-gpu-2xA100.txt");
      return { stdout, stderr: "", code: 0 } as never;
    };
    const l = await readGpuLedger({
      run,
      readCgroup: async (pid) => (cgroups[pid] ? cgroups[pid]! : Promise.reject(new Error("ENOENT"))),
      containers: async () => [{ id: V1_ID, names: ["/comfy-app-1"], labels: {} }],
    });
    expect(l![0]!.holders.map((h) => h.app)).toEqual(["comfy", "comfy"]);
    expect(l![1]!.holders.map((h) => h.app)).toEqual([null, null]);
    const none = await readGpuLedger({ run: async () => Promise.reject(new Error("nvidia-smi: not found")) });
    expect(none).toBeNull();
  });
});

describe("recorded on an NVIDIA H200 (driver 580.159.04, CUDA 13.0, no Docker on that machine)", () => {
  // A python3 + torch process held a 3 GiB tensor; its cgroup was the machine's own, not a container's.
  const ledger = buildLedger({
    gpus: parseGpuCsv(fx("nvidia-smi-query-gpu-h200-580.txt")),
    processes: parseComputeAppsCsv(fx("nvidia-smi-compute-apps-h200-580.txt")),
    containerOfPid: (pid) => (pid === 487 ? containerIdFromCgroup(fx("proc-cgroup-v2-not-docker.txt")) : null),
    appOfContainer: () => null,
  });

  it("reads the GPU, its driver and the process holding memory, and names no app for a process outside a container", () => {
    expect(parseDriverInfo(fx("nvidia-smi-h200-580.txt"))).toEqual({ driverVersion: "580.159.04", cudaVersion: "13.0" });
    expect(ledger.map((g) => [g.index, g.name, g.totalMiB])).toEqual([[0, "NVIDIA H200", 143771]]);
    expect(ledger[0]!.holders).toEqual([{ app: null, pid: 487, memoryMiB: 3590, container: null }]);
    expect(gpuShortfall(ledger, ["0"], 142 * 1024)).toMatch(/^needs 142 GiB, .* free on GPU 0: pid 487 \(not an app\) holds 3\.5 GiB$/);
    expect(cudaMismatch("12.6", "13.0")).toBeNull();
  });
});
