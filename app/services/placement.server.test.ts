import type { HostFacts } from "../../agent/src/contract/facts";
import { assignGpus, freeMemoryMiB, nextFreePort, pickHost, type HostCandidate } from "./placement.server";

const gpu = (index: number, memoryMiB = 24_576) => ({ index, uuid: `GPU-${index}`, name: "NVIDIA L4", memoryMiB });
const withGpus = (...gpus: ReturnType<typeof gpu>[]): HostFacts => ({ nvidia: { runtime: true, gpus } });
const host = (id: string, over: Partial<HostCandidate> = {}): HostCandidate => ({ id, online: true, revoked: false, facts: {}, appCount: 0, heldGpus: [], ...over });

describe("assignGpus", () => {
  it("gives no GPU to an app that wants none, or may do without", () => {
    expect(assignGpus(withGpus(gpu(0)), [], undefined)).toEqual({ devices: [] });
    expect(assignGpus(withGpus(gpu(0)), [], { mode: "none" })).toEqual({ devices: [] });
    expect(assignGpus({}, [], { mode: "optional" })).toEqual({ devices: [] });
  });

  it("gives whole free GPUs with enough memory, never one another app holds", () => {
    const facts = withGpus(gpu(0), gpu(1, 8192), gpu(2));
    expect(assignGpus(facts, [], { mode: "required" })).toEqual({ devices: ["0"] });
    // First fit by free memory: the 24 GiB GPU 2 before the 8 GiB GPU 1.
    expect(assignGpus(facts, ["0"], { mode: "required", count: 1 })).toEqual({ devices: ["2"] });
    expect(assignGpus(facts, ["0"], { mode: "required", count: 1, minMemoryMiB: 16_384 })).toEqual({ devices: ["2"] });
    expect(assignGpus(facts, [], { mode: "required", count: 3 })).toEqual({ devices: ["0", "2", "1"] });
  });

  it("refuses a required GPU the host cannot give, and says why; an optional one goes without", () => {
    expect(assignGpus({}, [], { mode: "required" })).toEqual({ reason: expect.stringMatching(/no NVIDIA GPU/) });
    // A host whose NVIDIA runtime is missing has no usable GPU, whatever nvidia-smi lists.
    expect(assignGpus({ nvidia: { runtime: false, gpus: [gpu(0)] } }, [], { mode: "required" })).toHaveProperty("reason");
    expect(assignGpus(withGpus(gpu(0)), ["0"], { mode: "required" })).toEqual({ reason: expect.stringMatching(/0 free GPU/) });
    expect(assignGpus(withGpus(gpu(0)), ["0"], { mode: "optional" })).toEqual({ devices: [] });
  });
});

describe("pickHost", () => {
  it("waits when no host is online and not revoked", () => {
    expect(pickHost([], undefined)).toEqual({ hostId: null, reason: "waiting for a host" });
    expect(pickHost([host("a", { online: false }), host("b", { revoked: true })], undefined)).toEqual({ hostId: null, reason: "waiting for a host" });
  });

  it("takes the online host with the fewest apps, ties by id", () => {
    expect(pickHost([host("b", { appCount: 3 }), host("a", { appCount: 5 }), host("c", { appCount: 3 })], undefined)).toEqual({ hostId: "b", gpuDevices: [] });
  });

  it("takes only a host that meets the GPU requirement, with the devices it holds there", () => {
    const hosts = [host("cpu-only", { appCount: 0 }), host("gpu-busy", { appCount: 1, facts: withGpus(gpu(0)), heldGpus: ["0"] }), host("gpu-free", { appCount: 9, facts: withGpus(gpu(0), gpu(1)), heldGpus: ["0"] })];
    expect(pickHost(hosts, { mode: "required" })).toEqual({ hostId: "gpu-free", gpuDevices: ["1"] });
    expect(pickHost(hosts.slice(0, 2), { mode: "required" })).toEqual({ hostId: null, reason: "waiting for a host with a free GPU" });
    // Optional: a host that can give it a GPU first, however busy; without one, the emptiest host.
    expect(pickHost(hosts, { mode: "optional" })).toEqual({ hostId: "gpu-free", gpuDevices: ["1"] });
    expect(pickHost(hosts.slice(0, 2), { mode: "optional" })).toEqual({ hostId: "cpu-only", gpuDevices: [] });
  });
});

describe("placement by free GPU memory and ports", () => {
  const ledgerFacts = (free: number[]): HostFacts => ({
    nvidia: { runtime: true, gpus: free.map((_, i) => gpu(i)) },
    gpuLedger: free.map((f, i) => ({ index: i, uuid: `GPU-${i}`, name: "NVIDIA L4", totalMiB: 24_576, usedMiB: 24_576 - f, freeMiB: f, holders: [] })),
  });

  it("reads free memory from the ledger, else from used memory in the facts, else the total", () => {
    expect(freeMemoryMiB(ledgerFacts([9_000]), gpu(0))).toBe(9_000);
    expect(freeMemoryMiB({}, { ...gpu(0), memoryUsedMiB: 20_000 })).toBe(4_576);
    expect(freeMemoryMiB({}, gpu(0))).toBe(24_576);
  });

  it("places a GPU app only where its memory is free now, on the GPU with the most free", () => {
    const need = { mode: "required" as const, minMemoryMiB: 12_288 };
    expect(assignGpus(ledgerFacts([9_000, 20_000, 14_000]), [], need)).toEqual({ devices: ["1"] });
    expect(assignGpus(ledgerFacts([9_000]), [], need)).toEqual({ reason: expect.stringMatching(/12288 MiB free memory/) });
    const hosts = [host("full", { facts: ledgerFacts([9_000]) }), host("roomy", { appCount: 4, facts: ledgerFacts([16_000]) })];
    expect(pickHost(hosts, need)).toEqual({ hostId: "roomy", gpuDevices: ["0"] });
    expect(pickHost(hosts.slice(0, 1), need)).toEqual({ hostId: null, reason: "waiting for a host with a free GPU" });
  });

  it("filters hosts by a free port; waits when no host has it", () => {
    const hosts = [host("a", { usedPorts: [7860] }), host("b", { appCount: 3, usedPorts: [8188] })];
    expect(pickHost(hosts, undefined, 7860)).toEqual({ hostId: "b", gpuDevices: [] });
    expect(pickHost(hosts, undefined, 9000)).toEqual({ hostId: "a", gpuDevices: [] });
    expect(pickHost([hosts[0]!], undefined, 7860)).toEqual({ hostId: null, reason: "waiting for a host where port 7860 is free" });
  });

  it("turns a taken template port into the next free one", () => {
    expect(nextFreePort([7860, 7861, 8188], 7860)).toBe(7862);
    expect(nextFreePort([], 7860)).toBe(7860);
    expect(nextFreePort([65535], 65535)).toBeNull();
  });
});

describe("pinned GPUs", () => {
  const facts = withGpus(gpu(0), gpu(1));
  it("gives exactly the pinned devices, or says why not", () => {
    expect(assignGpus(facts, [], { mode: "required", devices: ["1"] })).toEqual({ devices: ["1"] });
    expect(assignGpus(facts, ["1"], { mode: "required", devices: ["1"] })).toEqual({ reason: "GPU 1 (pinned) is held by another app" });
    expect(assignGpus(facts, [], { mode: "required", devices: ["7"] })).toEqual({ reason: "GPU 7 (pinned) is not on this host" });
    expect(assignGpus(facts, [], { mode: "required", devices: ["0"], minMemoryMiB: 30_000 })).toEqual({ reason: "GPU 0 (pinned) has less than 30000 MiB free" });
  });
});
