import type { HostFacts } from "../../agent/src/contract/facts";
import { assignGpus, pickHost, type HostCandidate } from "./placement.server";

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
    expect(assignGpus(facts, ["0"], { mode: "required", count: 1 })).toEqual({ devices: ["1"] });
    expect(assignGpus(facts, ["0"], { mode: "required", count: 1, minMemoryMiB: 16_384 })).toEqual({ devices: ["2"] });
    expect(assignGpus(facts, [], { mode: "required", count: 3 })).toEqual({ devices: ["0", "1", "2"] });
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
    // Optional: the emptiest host wins even without a GPU.
    expect(pickHost(hosts, { mode: "optional" })).toEqual({ hostId: "cpu-only", gpuDevices: [] });
  });
});
