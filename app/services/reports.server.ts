// What the console does with what an agent says: command acks, progress and results, status
// reports, inventory and usage. An agent is trusted only as its own host: every write about an app
// is guarded by `apps.host_id = <the reporting host>`, and a report about another host's app is
// refused (returned to the hub, which logs it) with nothing written. How an answer or report turns
// into the app's status is app-status.server.ts's rule; host presence is host-presence.server.ts.
import { and, eq, inArray, isNotNull, lt, sql } from "drizzle-orm";
import type { InventoryItem, LogLine, Progress, StatusReport, UsageSample } from "../../agent/src/contract/reports";
import { LIFECYCLE_ACTIONS } from "../../agent/src/contract/spec";
import { apps, commands, hosts, marketplaceTemplates, type App, type Command } from "../../db/schema";
import type { AppChange, ConsoleContext } from "../context.server";
import { answeredState, observedState, restoredState, writeAppState } from "./app-status.server";
import { recordCleanupOutcome } from "./cleanup.server";
import { prepullFinished, prepullProgress, pullPhase } from "./prepull.server";
import { publishAll, recordEvent } from "./events.server";
import { notifyEvent } from "./notify.server";

type Ctx = Pick<ConsoleContext, "db" | "bus">;

export interface Refusal {
  app: string;
  reason: string;
}

const UNFINISHED = ["pending", "delivered"] as const;

const nowIso = () => new Date().toISOString();

// ---------------------------------------------------------------------------------------------
// The outbox as the hub reads it

export async function unfinishedCommands(ctx: Ctx, hostId: string): Promise<Command[]> {
  return ctx.db
    .select()
    .from(commands)
    .where(and(eq(commands.hostId, hostId), inArray(commands.state, [...UNFINISHED])))
    .orderBy(sql`rowid`);
}

/** Hosts held by this process with commands nobody has picked up (written by other processes). */
export async function hostsWithPendingCommands(ctx: Ctx, processId: string): Promise<string[]> {
  const rows = await ctx.db
    .selectDistinct({ hostId: commands.hostId })
    .from(commands)
    .innerJoin(hosts, eq(hosts.id, commands.hostId))
    .where(and(eq(commands.state, "pending"), eq(hosts.connectedTo, processId)));
  return rows.map((r) => r.hostId);
}

export async function countAttempts(ctx: Ctx, ids: string[]): Promise<void> {
  if (ids.length) await ctx.db.update(commands).set({ attempts: sql`${commands.attempts} + 1` }).where(inArray(commands.id, ids));
}

// ---------------------------------------------------------------------------------------------
// Command answers

export async function commandAcked(ctx: Ctx, hostId: string, id: string): Promise<void> {
  await ctx.db
    .update(commands)
    .set({ state: "delivered", deliveredAt: nowIso() })
    .where(and(eq(commands.id, id), eq(commands.hostId, hostId), eq(commands.state, "pending")));
}

export async function commandProgress(ctx: Ctx, hostId: string, id: string, progress: Progress): Promise<void> {
  const [cmd] = await ctx.db
    .select({ appId: commands.appId, appName: commands.appName, action: commands.action })
    .from(commands)
    .where(and(eq(commands.id, id), eq(commands.hostId, hostId)));
  if (cmd?.action === "prepull" && !cmd.appId) return prepullProgress(ctx.db, hostId, id, progress);
  if (!cmd?.appId || !cmd.appName) return;
  const appId = cmd.appId;
  const changes: AppChange[] = [];
  await ctx.db.transaction(async (tx) => {
    const owned = await tx
      .update(apps)
      .set({ phase: progress.step === "pull" ? pullPhase(progress) : progress.step, updatedAt: nowIso() })
      .where(and(eq(apps.id, appId), eq(apps.hostId, hostId)))
      .returning({ id: apps.id });
    if (!owned.length) return;
    const data: Record<string, unknown> = { commandId: id, action: cmd.action, phase: progress.step === "pull" ? pullPhase(progress) : progress.step, step: progress.step };
    if (progress.pct !== undefined) data.pct = progress.pct;
    if (progress.bytes !== undefined) data.bytes = progress.bytes;
    if (progress.layer !== undefined) data.layer = progress.layer;
    if (progress.message !== undefined) data.message = progress.message;
    if (progress.output?.length) data.output = progress.output;
    changes.push(await recordEvent(tx, { appId, appName: cmd.appName!, type: "progress", data }));
  });
  publishAll(ctx, changes);
}

export type FinishOutcome = "applied" | "duplicate" | "unknown";

export interface CommandAnswer {
  id: string;
  ok: boolean;
  result?: Record<string, unknown>;
  error?: string;
  /** The agent's observation of the app when it answered; absent when the agent did not run it. */
  observed?: StatusReport;
}

/**
 * Records a command's end exactly once (the row changes only while unfinished) and applies it
 * to the app: a deinstall removes the record (events stay, template links are cleared); anything
 * else sets the app to what the agent observed (app-status.server.ts). `ranOnAgent: false` is a
 * command that ended without the agent running it (expired, refused, past its deadline,
 * cancelled): the app gets its last observed state back, with the reason.
 */
export async function commandFinished(ctx: Ctx, hostId: string, r: CommandAnswer, ranOnAgent = true): Promise<FinishOutcome> {
  const finish = { state: r.ok ? ("done" as const) : ("failed" as const), finishedAt: nowIso(), result: r.result ?? null, error: r.ok ? null : r.error ?? "failed" };
  const gate = and(eq(commands.id, r.id), eq(commands.hostId, hostId), inArray(commands.state, [...UNFINISHED]));
  const [head] = await ctx.db
    .select({ appId: commands.appId, state: commands.state, action: commands.action })
    .from(commands)
    .where(and(eq(commands.id, r.id), eq(commands.hostId, hostId)));
  if (!head) return "unknown";
  if (!head.appId && head.action === "cleanup") {
    // Cleanup of orphans: the result is the record; a removal's outcome is audited with it, once.
    return ctx.db.transaction(async (tx): Promise<FinishOutcome> => {
      const [cmd] = await tx.update(commands).set(finish).where(gate).returning();
      if (!cmd) return "duplicate";
      await recordCleanupOutcome(tx, hostId, cmd, r);
      return "applied";
    });
  }
  if (!head.appId && head.action === "prepull") {
    return ctx.db.transaction(async (tx): Promise<FinishOutcome> => {
      const [cmd] = await tx.update(commands).set(finish).where(gate).returning({ id: commands.id });
      if (!cmd) return "duplicate";
      await prepullFinished(tx, hostId, cmd.id, r);
      return "applied";
    });
  }
  if (!head.appId) {
    // No app to change (ping): one conditional write, no transaction holding the write lock.
    const done = await ctx.db.update(commands).set(finish).where(gate).returning({ id: commands.id });
    return done.length ? "applied" : "duplicate";
  }
  const changes: AppChange[] = [];
  const outcome = await ctx.db.transaction(async (tx): Promise<FinishOutcome> => {
    const [cmd] = await tx.update(commands).set(finish).where(gate).returning();
    if (!cmd) return "duplicate";
    if (!cmd.appId) return "applied";
    const [app] = await tx.select().from(apps).where(and(eq(apps.id, cmd.appId), eq(apps.hostId, hostId)));
    if (!app) return "applied";
    const base = { commandId: cmd.id, action: cmd.action, ok: r.ok };

    if (r.ok && cmd.action === "deinstall") {
      await tx.update(marketplaceTemplates).set({ originAppId: null }).where(eq(marketplaceTemplates.originAppId, app.id));
      await tx.delete(apps).where(eq(apps.id, app.id));
      changes.push(await recordEvent(tx, { appId: app.id, appName: app.name, type: "deleted", data: base }));
      return "applied";
    }
    const patch = ranOnAgent ? answeredState(app, cmd.action, r) : restoredState(app, r.error ?? `${cmd.action} did not run`);
    const data = { ...base, ...(r.ok ? {} : { error: r.error }), ...(ranOnAgent ? {} : { ranOnAgent: false }) };
    const change = await writeAppState(tx, app, patch, { type: "result", data, hostId });
    // The command's end is in the timeline even when the agent's reports already showed its state.
    changes.push(change ?? (await recordEvent(tx, { appId: app.id, appName: app.name, type: "result", data })));
    return "applied";
  });
  publishAll(ctx, changes);
  if (!r.ok && outcome === "applied" && ["provision", "reinstall", "update"].includes(head.action)) await notifyEvent(ctx, { kind: "deploy.failed", host: hostId, key: `deploy.failed:${r.id}`, detail: { commandId: r.id, action: head.action, error: r.error } });
  return outcome;
}

/** A command the agent would not run, or one that ended before it got there, ends as failed. */
export function commandRejected(ctx: Ctx, hostId: string, id: string, why: string): Promise<FinishOutcome> {
  return commandFinished(ctx, hostId, { id, ok: false, error: why }, false);
}

/**
 * Commands delivered but unanswered past their deadline (plus `graceMs` for the agent's own
 * deadline answer to arrive) fail with a reason that names the host. Returns how many.
 */
export async function failOverdueCommands(ctx: Ctx, graceMs: number): Promise<number> {
  const cutoff = new Date(Date.now() - graceMs).toISOString();
  const due = await ctx.db
    .select({ id: commands.id, hostId: commands.hostId, action: commands.action, deliveredAt: commands.deliveredAt, deadlineAt: commands.deadlineAt, hostName: hosts.name })
    .from(commands)
    .leftJoin(hosts, eq(hosts.id, commands.hostId))
    .where(and(inArray(commands.state, [...UNFINISHED]), isNotNull(commands.deadlineAt), lt(commands.deadlineAt, cutoff)))
    .limit(500);
  let n = 0;
  for (const c of due) {
    const minutes = c.deliveredAt ? Math.max(1, Math.round((Date.parse(c.deadlineAt!) - Date.parse(c.deliveredAt)) / 60_000)) : null;
    const why = `${c.action} got no answer from host ${c.hostName ?? c.hostId}${minutes ? ` within ${minutes} min` : ""} (deadline ${c.deadlineAt}); the command was given up`;
    if ((await commandRejected(ctx, c.hostId, c.id, why)) === "applied") n++;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// Reports

async function ownedApps(ctx: Ctx, names: string[]): Promise<Map<string, App>> {
  const rows = names.length ? await ctx.db.select().from(apps).where(inArray(apps.name, names)) : [];
  return new Map(rows.map((a) => [a.name, a]));
}

function ownership(app: App | undefined, hostId: string, name: string): string | null {
  if (!app) return `no app named ${name}`;
  if (app.hostId !== hostId) return `app ${name} belongs to ${app.hostId ? `host ${app.hostId}` : "no host"}, not to the reporting host`;
  return null;
}

/** Applies the agent's observations to the host's own apps; writes an event per app that changed. */
export async function applyStatusReports(ctx: Ctx, hostId: string, reports: StatusReport[]): Promise<Refusal[]> {
  const refused: Refusal[] = [];
  const byName = await ownedApps(ctx, [...new Set(reports.map((r) => r.app))]);
  const writes: { app: App; report: StatusReport }[] = [];
  for (const r of reports) {
    const app = byName.get(r.app);
    const why = ownership(app, hostId, r.app);
    if (why || !app) refused.push({ app: r.app, reason: why ?? "unknown app" });
    else writes.push({ app, report: r });
  }
  if (!writes.length) return refused;
  const changes: AppChange[] = [];
  const stopped: { app: App; report: StatusReport }[] = [];
  await ctx.db.transaction(async (tx) => {
    for (const { app, report: r } of writes) {
      if (r.status === "STOPPED" && app.status !== "STOPPED") stopped.push({ app, report: r });
      const extra: Record<string, unknown> = { reportedAt: r.at };
      if (r.containerState !== undefined) extra.containerState = r.containerState;
      if (r.exitCode !== undefined) extra.exitCode = r.exitCode;
      const patch = observedState(r);
      // A report only about the same state again changes nothing visible: no event for it.
      const visible = Object.keys(patch).some((k) => k !== "observed" && (app as Record<string, unknown>)[k] !== (patch as Record<string, unknown>)[k]);
      const change = await writeAppState(tx, app, { ...patch }, { type: "status", data: visible ? extra : undefined, hostId });
      if (change) changes.push(change);
      await tx.update(apps).set({ lastProbeAt: r.at }).where(and(eq(apps.id, app.id), eq(apps.hostId, hostId)));
    }
  });
  publishAll(ctx, changes);
  // An app that went down with no stop or deinstall on its way (notify.server.ts checks) is news.
  for (const { app, report: r } of stopped) {
    await notifyEvent(ctx, { kind: "app.stopped", app: app.name, host: hostId, key: `app.stopped:${app.name}:${r.at}`, detail: { at: r.at, exitCode: r.exitCode, containerState: r.containerState, lastError: r.lastError } });
  }
  return refused;
}

/**
 * Reconciles after (re)connect: the agent's inventory is the truth about the host's apps. Each
 * listed app takes the agent's observation; an app the console placed on this host that the agent
 * does not have is STOPPED ("not installed"), unless a command for it is still on its way (a
 * queued provision, say), whose own answer will tell.
 */
export async function applyInventory(ctx: Ctx, hostId: string, items: InventoryItem[]): Promise<Refusal[]> {
  const busy = new Set(
    (
      await ctx.db
        .select({ appId: commands.appId })
        .from(commands)
        .where(and(eq(commands.hostId, hostId), inArray(commands.state, [...UNFINISHED]), inArray(commands.action, [...LIFECYCLE_ACTIONS])))
    ).map((c) => c.appId),
  );
  const byName = await ownedApps(ctx, items.map((i) => i.app));
  const refused: Refusal[] = [];
  const reports: StatusReport[] = [];
  for (const item of items) {
    const app = byName.get(item.app);
    const why = ownership(app, hostId, item.app);
    if (why || !app) {
      refused.push({ app: item.app, reason: why ?? "unknown app" });
      continue;
    }
    if (busy.has(app.id)) continue;
    const r: StatusReport = item.observed ?? { app: item.app, status: item.status, health: app.health, at: nowIso() };
    if (!r.commitSha && item.commitSha && /^[0-9a-f]{40,64}$/.test(item.commitSha)) r.commitSha = item.commitSha;
    reports.push(r);
  }
  if (reports.length) refused.push(...(await applyStatusReports(ctx, hostId, reports)));

  const listed = new Set(items.map((i) => i.app));
  const missing = (await ctx.db.select().from(apps).where(eq(apps.hostId, hostId))).filter(
    (a) => !listed.has(a.name) && !busy.has(a.id) && (a.status !== "STOPPED" || a.health !== "unknown"),
  );
  if (missing.length) {
    const changes: AppChange[] = [];
    await ctx.db.transaction(async (tx) => {
      for (const app of missing) {
        const patch = { status: "STOPPED" as const, health: "unknown" as const, phase: null, lastError: app.status === "STOPPED" && app.lastError ? app.lastError : "not installed on its host: start or reinstall deploys it" };
        const change = await writeAppState(tx, app, { ...patch, observed: { ...patch, at: nowIso() } }, { type: "status", hostId });
        if (change) changes.push(change);
      }
    });
    publishAll(ctx, changes);
  }
  return refused;
}

/** Writes the newest usage sample per app in one transaction; only the reporting host's apps. */
export async function flushUsage(ctx: Ctx, batch: { hostId: string; sample: UsageSample }[]): Promise<(Refusal & { hostId: string })[]> {
  if (!batch.length) return [];
  const refused: (Refusal & { hostId: string })[] = [];
  for (let i = 0; i < batch.length; i += 1000) {
    const slice = batch.slice(i, i + 1000);
    const results = await ctx.db.$client.batch(
      slice.map(({ hostId, sample }) => {
        const { app, at: _at, ...usage } = sample;
        return { sql: "UPDATE apps SET usage = ? WHERE name = ? AND host_id = ?", args: [JSON.stringify(usage), app, hostId] };
      }),
      "write",
    );
    slice.forEach(({ hostId, sample }, j) => {
      if (results[j].rowsAffected === 0) refused.push({ hostId, app: sample.app, reason: `no app named ${sample.app} on the reporting host` });
      else {
        const { app, ...usage } = sample;
        ctx.bus.publish({ id: 0, type: "usage", app, usage });
      }
    });
  }
  return refused;
}

/** Log lines are passed to live viewers only (not stored), and only for the host's own apps. */
export async function publishLogLines(ctx: Ctx, hostId: string, lines: LogLine[]): Promise<Refusal[]> {
  const byName = await ownedApps(ctx, [...new Set(lines.map((l) => l.app))]);
  const refused: Refusal[] = [];
  for (const l of lines) {
    const why = ownership(byName.get(l.app), hostId, l.app);
    if (why) refused.push({ app: l.app, reason: why });
    else ctx.bus.publish({ id: 0, type: "log", app: l.app, stream: l.stream, line: l.line, at: l.at });
  }
  return refused;
}
