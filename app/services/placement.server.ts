// Placement rules (pure): which host gets an app, which GPUs it holds there, and which port a
// template's default becomes on that host.
import { usableGpus, type GpuInfo, type HostFacts } from "../../agent/src/contract/facts";
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
  /** Ports of the apps placed on this host (absent: not loaded, nothing is filtered by port). */
  usedPorts?: number[];
}

export type Placement = { hostId: string; gpuDevices: string[] } | { hostId: null; reason: string };

/**
 * Memory free on a GPU now: the agent's ledger when it reported one, else total − used from its
 * facts, else the total (a host that reports no use).
 */
export function freeMemoryMiB(facts: HostFacts, g: GpuInfo): number {
  const ledger = facts.gpuLedger?.find((e) => e.index === g.index);
  if (ledger) return ledger.freeMiB;
  return g.memoryUsedMiB !== undefined ? Math.max(0, g.memoryMiB - g.memoryUsedMiB) : g.memoryMiB;
}

/**
 * GPU ids for an app on a host, or a reason it cannot have them: first fit by free memory (the
 * GPU with the most free memory first). Whole GPUs are never shared between apps that hold them.
 */
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
  const need = req?.minMemoryMiB ?? 0;
  if (req?.devices?.length) {
    // Pinned: exactly these GPUs, or none of this host.
    for (const d of req.devices) {
      const g = gpus.find((x) => String(x.index) === d);
      if (!g) return { reason: `GPU ${d} (pinned) is not on this host` };
      if (heldGpus.includes(d)) return { reason: `GPU ${d} (pinned) is held by another app` };
      if (need > freeMemoryMiB(facts, g)) return { reason: `GPU ${d} (pinned) has less than ${need} MiB free` };
    }
    return { devices: [...req.devices] };
  }
  const want = req?.count ?? 1;
  const free = gpus
    .filter((g) => !heldGpus.includes(String(g.index)) && need <= freeMemoryMiB(facts, g))
    .sort((a, b) => freeMemoryMiB(facts, b) - freeMemoryMiB(facts, a) || a.index - b.index);
  if (free.length < want) {
    if (mode === "optional") return { devices: [] };
    return { reason: `the host has ${free.length} free GPU(s) with ${need ? `${need} MiB free memory` : "enough memory"}; the app needs ${want}` };
  }
  return { devices: free.slice(0, want).map((g) => String(g.index)) };
}

/**
 * Online host that fits: the port free (when given), the GPU requirement met (free memory
 * included); GPU-optional apps go to hosts that can give them a GPU first; then fewest apps.
 */
export function pickHost(candidates: HostCandidate[], req: GpuRequirement | undefined, port?: number): Placement {
  const usable = candidates.filter((h) => h.online && !h.revoked);
  if (usable.length === 0) return { hostId: null, reason: "waiting for a host" };
  const portFree = port === undefined ? usable : usable.filter((h) => !h.usedPorts?.includes(port));
  if (portFree.length === 0) return { hostId: null, reason: `waiting for a host where port ${port} is free` };
  const optional = req?.mode === "optional";
  const fits = portFree
    .map((h) => ({ h, a: assignGpus(h.facts, h.heldGpus, req) }))
    .filter((x): x is { h: HostCandidate; a: { devices: string[] } } => "devices" in x.a)
    .sort(
      (x, y) =>
        (optional ? Number(y.a.devices.length > 0) - Number(x.a.devices.length > 0) : 0) || x.h.appCount - y.h.appCount || x.h.id.localeCompare(y.h.id),
    );
  if (fits.length === 0) return { hostId: null, reason: "waiting for a host with a free GPU" };
  return { hostId: fits[0].h.id, gpuDevices: fits[0].a.devices };
}

/** The first port from `from` up that no app on the host uses (a template's default taken → the next free one). */
export function nextFreePort(used: Iterable<number>, from: number): number | null {
  const taken = new Set(used);
  for (let p = from; p <= 65535; p++) if (!taken.has(p)) return p;
  return null;
}
