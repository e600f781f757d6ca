// The one home of "who owns an app's status" (DESIGN.md). The agent observes, the console records:
// once a command reaches the agent, only the agent's observation (a status report, the `observed`
// state a command result carries, the inventory at reconnect) sets status, health, phase and
// lastError. The console writes status itself only when it queues an action (`queuedState`) and
// when a command ends without the agent having run it — expired, refused, cancelled, past its
// deadline, app removed — when it restores the last observed state and says why (`restoredState`).
// Host presence (online/offline) is not written into the app: app objects derive `hostOnline`
// and show health "unknown" while their host is away; `presenceChanged` tells live viewers.
import type { StoredEventType } from "../live-event";
import { and, eq, inArray } from "drizzle-orm";
import type { StatusReport } from "../../agent/src/contract/reports";
import type { Db } from "../../db/client";
import { appEvents, apps, type App, type ObservedState } from "../../db/schema";
import type { AppChange, ConsoleContext } from "../context.server";
import { publishAll, recordEvent } from "./events.server";

type Tx = Pick<Db, "insert" | "update" | "select">;
type StateFields = Pick<App, "status" | "health" | "phase" | "lastError">;
export type StatePatch = Partial<StateFields & Pick<App, "commitSha" | "observed" | "progress">>;

const SHA = /^[0-9a-f]{40,64}$/;

/** Actions after which the app runs (or is being brought up): amber while they are on their way. */
const RAISES = new Set(["provision", "start", "restart", "reinstall", "update"]);
const QUEUED_PHASE: Record<string, string> = {
  provision: "queued",
  start: "starting",
  restart: "restarting",
  reinstall: "reinstalling",
  update: "updating",
  stop: "stopping",
  deinstall: "removing",
};

/**
 * (a) The console queues an action: STARTING for the actions that bring the app up, phase says
 * what. An update of a stopped app is applied without starting it, so it stays STOPPED.
 */
export function queuedState(action: string, hostOnline: boolean, current?: App["status"]): StatePatch {
  const phase = QUEUED_PHASE[action] ?? action;
  const raises = RAISES.has(action) && !(action === "update" && current === "STOPPED");
  return {
    ...(raises ? { status: "STARTING" as const } : {}),
    phase: hostOnline ? phase : `${phase} (queued: host offline)`,
    lastError: null,
    // A new start begins without the last one's download figure.
    ...(raises ? { progress: null } : {}),
  };
}

/** An app with no host to run on yet: STOPPED with the reason as its phase. */
export function waitingState(reason: string): StatePatch {
  return { status: "STOPPED", phase: reason };
}

/** What the agent's observation makes of the app's state (and the last-observed copy kept for restores). */
export function observedState(r: StatusReport, failure?: string): StatePatch {
  const lastError = r.lastError ?? failure ?? null;
  const patch: StatePatch = {
    status: r.status,
    health: r.health,
    phase: r.phase ?? null,
    lastError,
    observed: { status: r.status, health: r.health, phase: r.phase ?? null, lastError, at: r.at },
    // A download the app's output shows belongs to STARTING; any other observation clears it.
    progress: r.status === "STARTING" ? (r.progress ?? null) : null,
  };
  if (r.commitSha && SHA.test(r.commitSha)) patch.commitSha = r.commitSha;
  return patch;
}

/**
 * (b) A command ended without the agent running it: the app shows what the agent last saw, and why
 * the command did not happen. An app never observed (its first deploy never ran) is STOPPED.
 */
export function restoredState(app: Pick<App, "observed">, why: string): StatePatch {
  const seen: ObservedState | null = app.observed ?? null;
  return {
    status: seen?.status ?? "STOPPED",
    health: seen?.health ?? "unknown",
    phase: null,
    lastError: why.slice(0, 4000),
  };
}

/**
 * A command's answer from the agent. With an observation it is the truth (a failure's reason is
 * kept when the agent has none of its own); without one the agent did not run it (a refusal, an
 * internal failure before the app was known): the last observed state comes back with the reason.
 */
export function answeredState(app: Pick<App, "observed">, action: string, r: { ok: boolean; error?: string; observed?: StatusReport }): StatePatch {
  const failure = r.ok ? undefined : `${action} failed: ${r.error ?? "unknown error"}`.slice(0, 4000);
  if (r.observed) return observedState(r.observed, failure);
  if (!r.ok) return restoredState(app, failure!);
  return { phase: null, lastError: null, ...(action === "stop" ? { status: "STOPPED" as const } : {}) };
}

/** What a newly registered app has been observed as: nothing yet (a restore shows it STOPPED). */
export function neverObserved(at = new Date().toISOString()): ObservedState {
  return { status: "STOPPED", health: "unknown", phase: null, lastError: null, at };
}

/**
 * The last observation an app row stands for. Rows from before observations were kept (null) were
 * written only by agent reports, so their visible state is the last observation.
 */
function lastObserved(app: App): Omit<ObservedState, "at"> {
  const o = app.observed ?? app;
  return { status: o.status, health: o.health, phase: o.phase, lastError: o.lastError };
}

/** The fields of `patch` that differ from `app` (an observation's time alone is no change). */
export function changedFields(app: App, patch: StatePatch): StatePatch {
  const out: StatePatch = {};
  for (const [k, v] of Object.entries(patch) as [keyof StatePatch, unknown][]) {
    if (k === "observed") {
      const next = v as ObservedState | null;
      const same = next !== null && JSON.stringify(lastObserved(app)) === JSON.stringify({ status: next.status, health: next.health, phase: next.phase, lastError: next.lastError });
      if (!same) out.observed = next;
    } else if (k === "progress") {
      if (JSON.stringify(app.progress ?? null) !== JSON.stringify(v ?? null)) out.progress = (v ?? null) as App["progress"];
    } else if ((app as Record<string, unknown>)[k] !== v) (out as Record<string, unknown>)[k] = v;
  }
  return out;
}

/**
 * Writes a state patch to one app (guarded by its host when given) and records the event viewers
 * see. Returns the change to publish after commit, or null when nothing visible changed.
 */
export async function writeAppState(
  tx: Tx,
  app: App,
  patch: StatePatch,
  event: { type: StoredEventType; data?: Record<string, unknown>; hostId?: string },
): Promise<AppChange | null> {
  const changed = changedFields(app, patch);
  const { observed: _observed, ...visible } = changed;
  // `data` marks an event worth recording by itself (a command's result, an action): it goes on
  // the timeline even when the state was already what the agent observed.
  if (!Object.keys(changed).length && !event.data) return null;
  if (Object.keys(changed).length) {
    // A row without a kept observation stands for one (see lastObserved): keep it before the
    // console writes over the visible state, so a later restore has it.
    if (!app.observed && !("observed" in changed)) changed.observed = { ...lastObserved(app), at: app.updatedAt };
    await tx
      .update(apps)
      .set({ ...changed, updatedAt: new Date().toISOString() })
      .where(event.hostId ? and(eq(apps.id, app.id), eq(apps.hostId, event.hostId)) : eq(apps.id, app.id));
    Object.assign(app, changed);
  }
  if (!Object.keys(visible).length && !event.data) return null;
  return recordEvent(tx, { appId: app.id, appName: app.name, type: event.type, data: { ...visible, ...event.data } });
}

/**
 * Tells live viewers that a host came or went: each of its apps turns grey (health unknown, its
 * last status kept) or back. The agent's inventory on reconnect then sets the real state.
 */
export async function presenceChanged(ctx: Pick<ConsoleContext, "db" | "bus">, hostIds: string[], online: boolean): Promise<void> {
  if (!hostIds.length) return;
  const changes: AppChange[] = [];
  // One multi-row insert per 500 apps: a reconnect storm of thousands of hosts stays a few statements.
  await ctx.db.transaction(async (tx) => {
    for (let i = 0; i < hostIds.length; i += 500) {
      const rows = await tx
        .select({ id: apps.id, name: apps.name, health: apps.health })
        .from(apps)
        .where(inArray(apps.hostId, hostIds.slice(i, i + 500)));
      for (let j = 0; j < rows.length; j += 500) {
        const values = rows.slice(j, j + 500).map((a) => ({
          appId: a.id,
          appName: a.name,
          type: "host",
          data: online ? { hostOnline: true, health: a.health } : { hostOnline: false, health: "unknown" },
        }));
        const ids = await tx.insert(appEvents).values(values).returning({ id: appEvents.id, at: appEvents.createdAt });
        ids.forEach((r, k) => changes.push({ ...values[k].data, id: r.id, type: "host", app: values[k].appName, at: r.at }));
      }
    }
  });
  publishAll(ctx, changes);
}
