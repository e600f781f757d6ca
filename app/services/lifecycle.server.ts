// Lifecycle use cases: start, stop, restart, reinstall, deinstall. Each is one outbox command,
// written with its status change, event and audit row in one transaction; asking again for an
// action that is already on its way adds nothing.
import { and, desc, eq, inArray } from "drizzle-orm";
import { z } from "zod";
import { AppNameSchema } from "../../agent/src/contract/validation";
import { appEvents, apps, commands, hosts, marketplaceTemplates, type App } from "../../db/schema";
import type { Actor, AppChange, ConsoleContext } from "../context.server";
import { buildDeploySpec, requireApp, type AppDto } from "./apps.server";
import { recordAudit } from "./audit.server";
import { enqueueCommand } from "./commands.server";
import { ServiceError } from "./errors";
import { publishAll, recordEvent } from "./events.server";

export const LifecycleInput = z.strictObject({ name: AppNameSchema });
export const ReinstallInput = z.strictObject({ name: AppNameSchema, clean: z.boolean().optional() });

export type LifecycleVerb = "start" | "stop" | "restart" | "reinstall" | "deinstall";

/** What the app looks like the moment the command is queued. */
const QUEUED: Record<LifecycleVerb, { status?: App["status"]; phase: string }> = {
  start: { status: "STARTING", phase: "starting" },
  restart: { status: "STARTING", phase: "restarting" },
  reinstall: { status: "STARTING", phase: "reinstalling" },
  stop: { phase: "stopping" },
  deinstall: { phase: "removing" },
};

export interface LifecycleResult {
  app: AppDto | null;
  commandId: string | null;
  /** True when the host is offline: the command waits in the outbox. */
  queued: boolean;
}

async function unfinished(ctx: Pick<ConsoleContext, "db">, appId: string) {
  return ctx.db
    .select({ id: commands.id, action: commands.action, params: commands.params })
    .from(commands)
    .where(and(eq(commands.appId, appId), inArray(commands.state, ["pending", "delivered"])))
    .orderBy(desc(commands.issuedAt));
}

/** Deinstall of an app that never reached a host: nothing was deployed, so the record goes now. */
async function removeRecord(ctx: ConsoleContext, actor: Actor, row: App): Promise<void> {
  const changes: AppChange[] = [];
  await ctx.db.transaction(async (tx) => {
    await tx.update(marketplaceTemplates).set({ originAppId: null }).where(eq(marketplaceTemplates.originAppId, row.id));
    await tx.delete(apps).where(eq(apps.id, row.id));
    changes.push(await recordEvent(tx, { appId: row.id, appName: row.name, type: "deleted", data: {} }));
    await recordAudit(tx, actor, { action: "app.deinstall", target: row.name, detail: { hostId: null } });
  });
  publishAll(ctx, changes);
}

export async function runLifecycle(
  ctx: ConsoleContext,
  actor: Actor,
  verb: LifecycleVerb,
  name: string,
  opts: { clean?: boolean } = {},
): Promise<LifecycleResult> {
  const [row] = await ctx.db.select().from(apps).where(eq(apps.name, name));
  if (!row) throw ServiceError.field("NOT_FOUND", "name", `does not name an existing app (${name})`);

  if (!row.hostId) {
    if (verb === "deinstall") {
      await removeRecord(ctx, actor, row);
      return { app: null, commandId: null, queued: false };
    }
    throw new ServiceError("PRECONDITION_FAILED", `${name} is waiting for a host; it starts when one connects`, { name: "is waiting for a host" });
  }

  const open = await unfinished(ctx, row.id);
  const same = open.find((c) => c.action === verb && (verb !== "reinstall" || Boolean(c.params.clean) === Boolean(opts.clean)));
  const [host] = await ctx.db.select({ online: hosts.online, revokedAt: hosts.revokedAt }).from(hosts).where(eq(hosts.id, row.hostId));
  const queued = !host?.online || host.revokedAt != null;
  if (same) return { app: await requireApp(ctx.db, name), commandId: same.id, queued };
  const blocking = open.find((c) => c.action === "deinstall" || (verb !== "stop" && verb !== "deinstall" && ["provision", "reinstall", "update"].includes(c.action)));
  if (blocking) throw ServiceError.field("CONFLICT", "name", `is busy: ${blocking.action} is still in progress`);

  const params = verb === "reinstall" ? { spec: await buildDeploySpec(ctx, row), clean: Boolean(opts.clean) } : {};
  const q = QUEUED[verb];
  const phase = queued ? `${q.phase} (queued: host offline)` : q.phase;
  const changes: AppChange[] = [];
  let commandId = "";
  await ctx.db.transaction(async (tx) => {
    await tx
      .update(apps)
      .set({ ...(q.status ? { status: q.status } : {}), phase, lastError: null, updatedAt: new Date().toISOString() })
      .where(eq(apps.id, row.id));
    commandId = await enqueueCommand(tx, actor, { hostId: row.hostId!, appId: row.id, appName: row.name, action: verb, params }, ctx.metrics);
    changes.push(
      await recordEvent(tx, { appId: row.id, appName: row.name, type: "action", data: { action: verb, ...(q.status ? { status: q.status } : {}), phase, lastError: null } }),
    );
    await recordAudit(tx, actor, { action: `app.${verb}`, target: row.name, detail: { commandId, ...(verb === "reinstall" ? { clean: Boolean(opts.clean) } : {}) } });
  });
  publishAll(ctx, changes);
  ctx.dispatcher.kick(row.hostId);
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
