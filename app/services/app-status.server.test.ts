import { describe, expect, it } from "vitest";
import type { App } from "../../db/schema";
import { answeredState, changedFields, observedState, queuedState, restoredState, waitingState } from "./app-status.server";

const at = "2026-11-29T10:00:00.000Z";
const running = { app: "demo", status: "RUNNING" as const, health: "reachable" as const, phase: null, lastError: null, at };

function app(over: Partial<App> = {}): App {
  return {
    id: "a1", name: "demo", repository: "https://example.com/r.git", startCommand: "run", installCommand: null, port: 7860, image: null,
    gpu: null, gpuDevices: [], templateId: null, hostId: "h1", status: "STARTING", health: "unknown", lastProbeAt: null, phase: "queued",
    lastError: null, commitSha: null, usage: null, observed: null, statusSince: null, createdAt: at, updatedAt: at, ...over,
  } as App;
}

describe("queuedState: the console writes status only when it queues", () => {
  it("raises deploy-like actions to STARTING with the phase, clearing the last error", () => {
    for (const a of ["provision", "start", "restart", "reinstall", "update"]) {
      expect(queuedState(a, true)).toMatchObject({ status: "STARTING", lastError: null });
    }
    expect(queuedState("restart", true).phase).toBe("restarting");
  });
  it("leaves status alone for stop and deinstall", () => {
    expect(queuedState("stop", true)).toEqual({ phase: "stopping", lastError: null });
    expect(queuedState("deinstall", true).status).toBeUndefined();
  });
  it("an update of a stopped app does not start it", () => {
    expect(queuedState("update", true, "STOPPED").status).toBeUndefined();
    expect(queuedState("update", true, "RUNNING").status).toBe("STARTING");
  });
  it("says when the command waits for an offline host", () => {
    expect(queuedState("start", false).phase).toBe("starting (queued: host offline)");
  });
  it("a waiting app is STOPPED with the reason", () => {
    expect(waitingState("waiting for a host")).toEqual({ status: "STOPPED", phase: "waiting for a host" });
  });
});

describe("observedState and answeredState: the agent's observation is the truth", () => {
  it("a no-op start on a running app ends green, not amber", () => {
    const p = answeredState(app({ status: "STARTING", phase: "starting" }), "start", { ok: true, observed: running });
    expect(p).toMatchObject({ status: "RUNNING", health: "reachable", phase: null, lastError: null });
    expect(p.observed).toMatchObject({ status: "RUNNING", health: "reachable", at });
  });
  it("a failed reinstall that left the old version running stays RUNNING, with the failure as the reason", () => {
    const p = answeredState(app(), "reinstall", { ok: false, error: "fetch failed", observed: running });
    expect(p).toMatchObject({ status: "RUNNING", health: "reachable", lastError: "reinstall failed: fetch failed" });
  });
  it("the agent's own lastError wins over the command's failure text", () => {
    const p = answeredState(app(), "start", { ok: false, error: "x", observed: { ...running, status: "STOPPED", health: "unknown", lastError: "exited with code 3" } });
    expect(p.lastError).toBe("exited with code 3");
  });
  it("keeps a reported commit", () => {
    const sha = "a".repeat(40);
    expect(observedState({ ...running, commitSha: sha }).commitSha).toBe(sha);
    expect(observedState({ ...running, commitSha: "nope" }).commitSha).toBeUndefined();
  });
  it("an answer without an observation that failed restores the last observed state", () => {
    const a = app({ status: "STARTING", observed: { status: "RUNNING", health: "reachable", phase: null, lastError: null, at } });
    expect(answeredState(a, "restart", { ok: false, error: "refused" })).toEqual({ status: "RUNNING", health: "reachable", phase: null, lastError: "restart failed: refused" });
  });
  it("a successful stop without an observation is STOPPED", () => {
    expect(answeredState(app({ status: "RUNNING" }), "stop", { ok: true })).toEqual({ status: "STOPPED", phase: null, lastError: null });
  });
});

describe("restoredState: a command that ended without the agent running it", () => {
  it("an expired or refused restart of a running app shows it running (not red), with why", () => {
    const a = app({ status: "STARTING", observed: { status: "RUNNING", health: "reachable", phase: null, lastError: null, at } });
    expect(restoredState(a, "expired before the agent confirmed it")).toEqual({ status: "RUNNING", health: "reachable", phase: null, lastError: "expired before the agent confirmed it" });
  });
  it("an app never observed (first deploy never ran) is STOPPED", () => {
    expect(restoredState(app(), "cancelled by admin")).toMatchObject({ status: "STOPPED", health: "unknown", lastError: "cancelled by admin" });
  });
});

describe("changedFields", () => {
  it("keeps only what differs, comparing the observed copy by value", () => {
    const obs = { status: "RUNNING" as const, health: "reachable" as const, phase: null, lastError: null, at };
    const a = app({ status: "RUNNING", health: "reachable", phase: null, observed: obs });
    expect(changedFields(a, { status: "RUNNING", health: "reachable", phase: null, observed: { ...obs } })).toEqual({});
    expect(changedFields(a, { health: "unreachable" })).toEqual({ health: "unreachable" });
  });
});

describe("startup progress", () => {
  const report = (over: Partial<Parameters<typeof observedState>[0]> = {}) => ({ app: "demo", status: "STARTING" as const, health: "unknown" as const, at: "2026-01-01T00:00:00Z", ...over });
  const p = { label: "downloading sd_xl_base_1.0.safetensors", percent: 42, updatedAt: "2026-01-01T00:00:00Z" };

  it("carries the agent's progress while STARTING and clears it otherwise", () => {
    expect(observedState(report({ progress: p })).progress).toEqual(p);
    expect(observedState(report()).progress).toBeNull();
    expect(observedState(report({ status: "RUNNING", health: "reachable", progress: p })).progress).toBeNull();
    expect(queuedState("start", true).progress).toBeNull();
    expect(queuedState("stop", true)).not.toHaveProperty("progress");
  });

  it("compares progress by value", () => {
    const a = app({ progress: p });
    expect(changedFields(a, { progress: { ...p } })).toEqual({});
    expect(changedFields(a, { progress: { ...p, percent: 77 } })).toEqual({ progress: { ...p, percent: 77 } });
  });
});
