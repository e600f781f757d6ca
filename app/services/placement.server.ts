// Placement rules (pure): which host gets an app, and which GPUs it holds there.
import { usableGpus, type HostFacts } from "../../agent/src/contract/facts";
import type { GpuRequirement } from "../../agent/src/contract/validation";

export interface HostCandidate {
  id: string;
  name?: string;
  online: boolean;
  revoked: boolean;
  facts: HostFacts;
  appCount: number;
  /** Device ids already held by apps on this host. */
  heldGpus: string[];
}

export type Placement = { hostId: string; gpuDevices: string[] } | { hostId: null; reason: string };

/** GPU ids for an app on a host, or a reason it cannot have them. Whole GPUs are never shared. */
export function assignGpus(
  facts: HostFacts,
  heldGpus: string[],
  req: GpuRequirement | undefined,
): { devices: string[] } | { reason: string } {
  const gpus = usableGpus(facts);
  const mode = req?.mode ?? "none";
  if (mode === "none" || gpus.length === 0) {
    return mode === "required" ? { reason: "the host reports no NVIDIA GPU usable by Docker, and the app requires one" } : { devices: [] };
  }
  const want = req?.count ?? 1;
  const free = gpus.filter((g) => !heldGpus.includes(String(g.index)) && (req?.minMemoryMiB ?? 0) <= g.memoryMiB);
  if (free.length < want) {
    if (mode === "optional") return { devices: [] };
    return { reason: `the host has ${free.length} free GPU(s) with enough memory; the app needs ${want}` };
  }
  return { devices: free.slice(0, want).map((g) => String(g.index)) };
}

/** Online host that fits the requirement, fewest apps first; null with the reason otherwise. */
export function pickHost(candidates: HostCandidate[], req: GpuRequirement | undefined): Placement {
  const usable = candidates.filter((h) => h.online && !h.revoked);
  if (usable.length === 0) return { hostId: null, reason: "waiting for a host" };
  const fits = usable
    .map((h) => ({ h, a: assignGpus(h.facts, h.heldGpus, req) }))
    .filter((x): x is { h: HostCandidate; a: { devices: string[] } } => "devices" in x.a)
    .sort((x, y) => x.h.appCount - y.h.appCount || x.h.id.localeCompare(y.h.id));
  if (fits.length === 0) return { hostId: null, reason: "waiting for a host with a free GPU" };
  return { hostId: fits[0].h.id, gpuDevices: fits[0].a.devices };
}
