// What the console does with an agent's answers to its commands: acks, progress, results and
// refusals, and commands given up past their deadline. The agent is trusted only as its own host:
// every write is guarded by the reporting host's id. How an answer turns into the app's status is
// app-status.server.ts's rule.
import { and, eq, inArray, isNotNull, lt } from "drizzle-orm";
import type { Progress, StatusReport } from "../../agent/src/contract/reports";
import { apps, commands, deploys, hosts, marketplaceTemplates } from "../../db/schema";
import { recordDeploy } from "./deploys.server";
import type { AppChange, ConsoleContext } from "../context.server";
import { answeredState, restoredState, writeAppState } from "./app-status.server";
import { recordCleanupOutcome } from "./cleanup.server";
import { prepullFinished, prepullProgress, pullPhase } from "./prepull.server";
import { publishAll, recordEvent } from "./events.server";
import { notifyEvent } from "./notify.server";

import { UNFINISHED } from "./outbox.server";

type Ctx = Pick<ConsoleContext, "db" | "bus">;
const nowIso = () => new Date().toISOString();


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

    await recordDeploy(tx, cmd, r);
    if (r.ok && cmd.action === "deinstall") {
      await tx.update(marketplaceTemplates).set({ originAppId: null }).where(eq(marketplaceTemplates.originAppId, app.id));
      await tx.delete(deploys).where(eq(deploys.appId, app.id));
      await tx.delete(apps).where(eq(apps.id, app.id));
      changes.push(await recordEvent(tx, { appId: app.id, appName: app.name, type: "deleted", data: base }));
      return "applied";
    }
    const patch = ranOnAgent ? answeredState(app, cmd.action, r) : restoredState(app, r.error ?? `${cmd.action} did not run`);
    const data = { ...base, ...(r.ok ? {} : { error: r.error }), ...(ranOnAgent ? {} : { ranOnAgent: false }) };
    // With `data`, the command's end is in the timeline even when the agent's reports already showed its state.
    const change = await writeAppState(tx, app, patch, { type: "result", data, hostId });
    if (change) changes.push(change);
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

