import { applyOverlay, EMPTY_OVERLAY, gather, mergeOverlay, patchOf, type LiveMessage, type MergeCache, type Overlay } from "./live-merge";

type A = { name: string; status: string; health: string; phase: string | null; statusSince?: string | null };
const base: A[] = [
  { name: "a", status: "RUNNING", health: "reachable", phase: null },
  { name: "b", status: "STOPPED", health: "unknown", phase: "stopped" },
];
const msg = (m: Partial<LiveMessage> & { app: string }): LiveMessage => ({ id: 0, type: "status", ...m });

function batchOf(...ms: LiveMessage[]): Overlay {
  const b: Overlay = { stored: {}, transient: {} };
  for (const m of ms) {
    const f = patchOf(m);
    if (f) gather(b, m, f);
  }
  return b;
}

describe("live merge", () => {
  it("takes only row fields from a message; a status change restarts the uptime", () => {
    expect(patchOf(msg({ app: "a", step: "clone", pct: 20 }))).toBeNull();
    expect(patchOf(msg({ app: "a", status: "STOPPED", exitCode: 137, at: "2026-01-01T00:00:00Z" }))).toEqual({ status: "STOPPED", statusSince: "2026-01-01T00:00:00Z" });
  });

  it("patches the changed row in place and keeps every other row's identity", () => {
    const o = mergeOverlay(EMPTY_OVERLAY, batchOf(msg({ id: 5, app: "b", status: "RUNNING", health: "reachable" })));
    const { list, cache } = applyOverlay(base, o, 0, new Map());
    expect(list[0]).toBe(base[0]);
    expect(list[1]).toEqual({ ...base[1], status: "RUNNING", health: "reachable" });
    // Same inputs again: the same merged object (memoised rows do not re-render).
    const again = applyOverlay(base, o, 0, cache);
    expect(again.list[1]).toBe(list[1]);
  });

  it("lets the newest stored event win within a frame and across frames", () => {
    let o = mergeOverlay(EMPTY_OVERLAY, batchOf(msg({ id: 7, app: "a", status: "STOPPED" }), msg({ id: 8, app: "a", status: "STARTING", phase: "pull" })));
    expect(o.stored.a).toEqual({ id: 8, fields: { status: "STARTING", phase: "pull" } });
    o = mergeOverlay(o, batchOf(msg({ id: 9, app: "a", status: "RUNNING" })));
    expect(o.stored.a).toEqual({ id: 9, fields: { status: "RUNNING", phase: "pull" } });
  });

  it("ignores stored patches the loader data already reflects (id ≤ since), keeps transient ones", () => {
    const o = mergeOverlay(EMPTY_OVERLAY, batchOf(msg({ id: 3, app: "a", status: "STOPPED" }), msg({ id: 0, type: "usage", app: "b", usage: { cpuPct: 5 } })));
    const cache: MergeCache<A> = new Map();
    const { list } = applyOverlay(base, o, 3, cache);
    expect(list[0]).toBe(base[0]);
    expect(list[1]).toEqual({ ...base[1], usage: { cpuPct: 5 } });
    expect(applyOverlay(base, o, 2, cache).list[0]!.status).toBe("STOPPED");
  });
});
