// The actions an operator asks for on an app: start, stop, restart, reinstall, deinstall, cancel. Each is one outbox
// command, written with its queued state (app-status.server.ts), event and audit row in one
// transaction; asking again for an action that is already on its way adds nothing. Start, restart
// and reinstall carry the deploy spec, so an app that is not installed on its host gets deployed.
import { and, desc, eq, inArray } from "drizzle-orm";
import { z } from "zod";
import { AppNameSchema } from "../../agent/src/contract/validation";
import { appEvents, apps, commands, deploys, hosts, marketplaceTemplates, type App } from "../../db/schema";
import type { Actor, AppChange, ConsoleContext } from "../context.server";
import { CANCELLABLE, decideAction, type ActionVerb } from "./action-rules";
import { queuedState, restoredState, writeAppState } from "./app-status.server";
import { buildDeploySpec, requireApp, type AppDto } from "./apps.server";
import { recordAudit } from "./audit.server";
import { enqueueCommand } from "./commands.server";
import { ServiceError } from "./errors";
import { publishAll, recordEvent } from "./events.server";
import { claimGpus, releaseGpus } from "./gpu-policy.server";
import { conflictOf, requireAppRow } from "./app-writes.server";

/** start / restart: `force` starts despite a GPU memory shortfall or a CUDA mismatch the agent finds. */
export const StartInput = z.strictObject({ name: AppNameSchema, force: z.boolean({ error: "must be true or false" }).optional() });
export const ReinstallInput = z.strictObject({ name: AppNameSchema, clean: z.boolean().optional() });
export const DeinstallInput = z.strictObject({ name: AppNameSchema, force: z.boolean().optional() });

/** Actions that carry the deploy spec (and deploy an app its host does not have). */
const WITH_SPEC = new Set<ActionVerb>(["start", "restart", "reinstall"]);

export interface ActionRequestResult {
  app: AppDto | null;
  commandId: string | null;
  /** True when the host is offline: the command waits in the outbox. */
  queued: boolean;
}

async function unfinished(ctx: Pick<ConsoleContext, "db">, appId: string) {
  return ctx.db
    .select({ id: commands.id, action: commands.action, params: commands.params, attempts: commands.attempts })
    .from(commands)
    .where(and(eq(commands.appId, appId), inArray(commands.state, ["pending", "delivered"])))
    .orderBy(desc(commands.issuedAt));
}

/**
 * Removes the record now: an app that never reached a host, or a forced removal (its host offline
 * or revoked). Unfinished commands of the app end as failed; name, port and GPUs are free at once.
 * With `leftovers`, a deinstall that names the app's id waits in the outbox for the host's return
 * (it cannot touch a newer app that reuses the name).
 */
async function removeRecord(ctx: ConsoleContext, actor: Actor, row: App, opts: { force?: boolean; leftovers?: boolean } = {}): Promise<string | null> {
  const changes: AppChange[] = [];
  let cleanupId: string | null = null;
  await ctx.db.transaction(async (tx) => {
    const why = `app removed by ${actor.kind} ${actor.id} (forced)`;
    await tx
      .update(commands)
      .set({ state: "failed", finishedAt: new Date().toISOString(), error: why })
      .where(and(eq(commands.appId, row.id), inArray(commands.state, ["pending", "delivered"])));
    await tx.update(marketplaceTemplates).set({ originAppId: null }).where(eq(marketplaceTemplates.originAppId, row.id));
    await tx.delete(deploys).where(eq(deploys.appId, row.id));
    await tx.delete(apps).where(eq(apps.id, row.id));
    if (opts.leftovers && row.hostId) {
      cleanupId = await enqueueCommand(tx, actor, { hostId: row.hostId, appId: row.id, appName: row.name, action: "deinstall", params: { appId: row.id } }, ctx.metrics);
    }
    changes.push(await recordEvent(tx, { appId: row.id, appName: row.name, type: "deleted", data: opts.force ? { forced: true } : {} }));
    await recordAudit(tx, actor, {
      action: opts.force ? "app.deinstall.force" : "app.deinstall",
      target: row.name,
      detail: { hostId: row.hostId, ...(cleanupId ? { leftoversCommandId: cleanupId } : {}) },
    });
  });
  publishAll(ctx, changes);
  if (cleanupId && row.hostId) ctx.dispatcher.kick(row.hostId);
  return cleanupId;
}

/**
 * `apps.deinstall { name, force: true }` (admin): the record goes at once, whatever the host's
 * state; the host removes the containers and files when (if) its agent is back.
 */
export async function forceDeinstall(ctx: ConsoleContext, actor: Actor, name: string): Promise<ActionRequestResult> {
  if (actor.role !== "admin") throw new ServiceError("FORBIDDEN", "forced removal needs the admin role", { force: "needs the admin role" });
  const row = await requireAppRow(ctx.db, name);
  const [host] = row.hostId ? await ctx.db.select({ revokedAt: hosts.revokedAt }).from(hosts).where(eq(hosts.id, row.hostId)) : [];
  const commandId = await removeRecord(ctx, actor, row, { force: true, leftovers: host !== undefined && host.revokedAt == null });
  return { app: null, commandId, queued: commandId !== null };
}

/**
 * `apps.cancel`: stops the app's queued or running deploy. The command ends as cancelled now and
 * the app shows what its agent last observed; an agent that may already have it is told to stop
 * (a queued one is dropped there, a running one aborted and its partial work cleared).
 */
export async function cancelApp(ctx: ConsoleContext, actor: Actor, name: string): Promise<ActionRequestResult> {
  const row = await requireAppRow(ctx.db, name);
  const open = (await unfinished(ctx, row.id)).filter((c) => CANCELLABLE.includes(c.action));
  if (!open.length || !row.hostId) throw ServiceError.field("PRECONDITION_FAILED", "name", "has no queued or running deploy to cancel");
  const hostId = row.hostId;
  const why = `cancelled by ${actor.kind === "user" ? actor.id : actor.kind === "token" ? `API token ${actor.id}` : actor.kind}`;
  const changes: AppChange[] = [];
  let cancelId: string | null = null;
  await ctx.db.transaction(async (tx) => {
    const ended = await tx
      .update(commands)
      .set({ state: "failed", finishedAt: new Date().toISOString(), error: why })
      .where(and(inArray(commands.id, open.map((c) => c.id)), inArray(commands.state, ["pending", "delivered"])))
      .returning({ id: commands.id, state: commands.state, attempts: commands.attempts, action: commands.action });
    const [app] = await tx.select().from(apps).where(eq(apps.id, row.id));
    if (app) {
      const change = await writeAppState(tx, app, restoredState(app, why), { type: "cancelled", data: { commands: ended.map((c) => c.id) } });
      if (change) changes.push(change);
    }
    // Any that may have reached the agent (sent at least once) is stopped there too.
    for (const c of open.filter((o) => o.attempts > 0)) {
      cancelId = await enqueueCommand(tx, actor, { hostId, appId: row.id, appName: row.name, action: "cancel", params: { commandId: c.id } }, ctx.metrics);
    }
    await recordAudit(tx, actor, { action: "app.cancel", target: row.name, detail: { commands: open.map((c) => c.id) } });
  });
  publishAll(ctx, changes);
  if (cancelId) ctx.dispatcher.kick(hostId);
  return { app: await requireApp(ctx.db, name), commandId: cancelId, queued: false };
}

export async function requestAppAction(
  ctx: ConsoleContext,
  actor: Actor,
  verb: ActionVerb,
  name: string,
  /**
   * `commitSha` (a reinstall only): a rollback to that commit (deploys.server.ts checks it).
   * `force` (start, restart): start even when the GPU check on the host would refuse.
   */
  opts: { clean?: boolean; commitSha?: string; force?: boolean } = {},
): Promise<ActionRequestResult> {
  let row = await requireAppRow(ctx.db, name);

  const open = row.hostId ? await unfinished(ctx, row.id) : [];
  const [host] = row.hostId ? await ctx.db.select({ online: hosts.online, revokedAt: hosts.revokedAt }).from(hosts).where(eq(hosts.id, row.hostId)) : [];
  const decision = decideAction(verb, { name, placed: row.hostId !== null }, host ? { revoked: host.revokedAt != null } : null, open, opts);
  const queued = !host?.online;
  switch (decision.kind) {
    case "remove-record":
      await removeRecord(ctx, actor, row);
      return { app: null, commandId: null, queued: false };
    case "refuse":
      if (!row.hostId) throw new ServiceError(decision.code, `${name} is waiting for a host; it starts when one connects`, { name: decision.message });
      throw ServiceError.field(decision.code, "name", decision.message);
    case "same":
      return { app: await requireApp(ctx.db, name), commandId: decision.commandId, queued };
  }
  const hostId = row.hostId!;

  // GPUs are held while the app runs: claimed before it starts, released when it is stopped.
  if (WITH_SPEC.has(verb)) row = await claimGpus(ctx.db, row).catch((e) => Promise.reject(conflictOf(e) ?? e));
  const params: Record<string, unknown> = WITH_SPEC.has(verb) ? { spec: await buildDeploySpec(ctx, row) } : {};
  if (verb === "reinstall") params.clean = Boolean(opts.clean);
  if (verb === "reinstall" && opts.commitSha) params.commitSha = opts.commitSha;
  const rollback = verb === "reinstall" && opts.commitSha ? opts.commitSha : null;
  const queuedPatch = queuedState(verb, !queued);
  // A rollback says so (and to which commit) where the app's phase and timeline show it.
  const state = rollback ? { ...queuedPatch, phase: queuedPatch.phase!.replace(/^[a-z]+/, `rolling back to ${rollback.slice(0, 12)}`) } : queuedPatch;
  if ((verb === "start" || verb === "restart") && opts.force) params.force = true;
  const changes: AppChange[] = [];
  let commandId = "";
  await ctx.db.transaction(async (tx) => {
    commandId = await enqueueCommand(tx, actor, { hostId, appId: row.id, appName: row.name, action: verb, params }, ctx.metrics);
    if (verb === "stop") await releaseGpus(tx, row);
    const change = await writeAppState(tx, row, state, { type: "action", data: { action: verb, ...state, ...(rollback ? { rollback } : {}) } });
    if (change) changes.push(change);
    await recordAudit(tx, actor, {
      action: rollback ? "app.rollback" : `app.${verb}`,
      target: row.name,
      detail: { commandId, ...(verb === "reinstall" ? { clean: Boolean(opts.clean) } : {}), ...(rollback ? { commitSha: opts.commitSha } : {}) },
    });
  });
  publishAll(ctx, changes);
  ctx.dispatcher.kick(hostId);
  return { app: await requireApp(ctx.db, name), commandId, queued };
}

export const AppEventsListInput = z.strictObject({
  name: AppNameSchema,
  limit: z.number().int().min(1).max(500).optional(),
  before: z.number().int().min(1).optional(),
});

/** The app's stored timeline, newest first. */
export async function listAppEvents(ctx: Pick<ConsoleContext, "db">, input: z.infer<typeof AppEventsListInput>) {
  await requireApp(ctx.db, input.name);
  const rows = await ctx.db
    .select()
    .from(appEvents)
    .where(eq(appEvents.appName, input.name))
    .orderBy(desc(appEvents.id))
    .limit(input.limit ?? 100);
  return rows.filter((r) => input.before === undefined || r.id < input.before).map((r) => ({ ...r.data, id: r.id, type: r.type, app: r.appName, at: r.createdAt }));
}
