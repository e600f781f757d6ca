import { describe, expect, it } from "vitest";
import type { GpuLedgerEntry } from "../contract/facts";
import { GpuGate } from "./gpu-gate";

const ledger: GpuLedgerEntry[] = [
  { index: 0, uuid: "GPU-a", name: "RTX 4090", totalMiB: 24564, usedMiB: 15245, freeMiB: 9319, holders: [{ app: "comfy", pid: 10, memoryMiB: 14541, container: "abc" }, { app: null, pid: 11, memoryMiB: 704, container: null }] },
];
const gate = (cuda: string | null, env: string[] = []) =>
  new GpuGate({
    ledger: async () => ledger,
    preflight: async () => ({ driverVersion: "535.104.05", cudaVersion: cuda, toolkit: "runtime", problems: [] }),
    imageConfig: async () => ({ Env: env }),
  });
const spec = { name: "sdxl", image: "img", gpuDevices: ["0"], gpuMinMemoryMiB: 12 * 1024 };

describe("GPU gate", () => {
  it("refuses a start that needs more memory than is free, naming who holds it", async () => {
    expect(await gate("12.2").check(spec)).toBe("needs 12 GiB, 9.1 GiB free on GPU 0: comfy holds 14.2 GiB, pid 11 (not an app) holds 704 MiB");
    await expect(gate("12.2").assert(spec, false)).rejects.toThrow(/needs 12 GiB.*start with force/);
    await expect(gate("12.2").assert(spec, true)).resolves.toBeUndefined();
    expect(await gate("12.2").check({ ...spec, gpuMinMemoryMiB: 8 * 1024 })).toBeNull();
    expect(await gate("12.2").check({ ...spec, name: "comfy" })).toBeNull();
  });

  it("refuses an image built for a newer CUDA than the driver supports", async () => {
    expect(await gate("12.2", ["CUDA_VERSION=12.6.3"]).check({ ...spec, gpuMinMemoryMiB: null })).toBe("image needs CUDA 12.6, driver supports 12.2");
    expect(await gate("12.6", ["CUDA_VERSION=12.6.3"]).check({ ...spec, gpuMinMemoryMiB: null })).toBeNull();
  });

  it("lets apps without GPUs through without asking anything", async () => {
    const g = new GpuGate({ ledger: () => Promise.reject(new Error("no")), preflight: () => Promise.reject(new Error("no")), imageConfig: () => Promise.reject(new Error("no")) });
    expect(await g.check({ ...spec, gpuDevices: [] })).toBeNull();
  });
});
