// What the console does with what an agent says: connection state, command acks, progress and
// results, status reports, inventory and usage. An agent is trusted only as its own host: every
// write about an app is guarded by `apps.host_id = <the reporting host>`, and a report about
// another host's app is refused (returned to the hub, which logs it) with nothing written.
import { and, eq, inArray, isNull, lt, ne, or, sql } from "drizzle-orm";
import type { HostFacts } from "../../agent/src/contract/facts";
import type { InventoryItem, LogLine, Progress, StatusReport, UsageSample } from "../../agent/src/contract/reports";
import { apps, commands, hosts, marketplaceTemplates, type App, type Command } from "../../db/schema";
import type { AppChange, ConsoleContext } from "../context.server";
import { recordCleanupOutcome } from "./cleanup.server";
import { publishAll, recordEvent } from "./events.server";
import { notifyEvent } from "./notify.server";

type Ctx = Pick<ConsoleContext, "db" | "bus">;

export interface Refusal {
  app: string;
  reason: string;
}

const UNFINISHED = ["pending", "delivered"] as const;
/** Actions after whose failure nothing of the app is known to run. */
const FAILURE_STOPS = new Set(["provision", "update", "reinstall", "start", "restart"]);
const SHA = /^[0-9a-f]{40,64}$/;

const nowIso = () => new Date().toISOString();

// ---------------------------------------------------------------------------------------------
// Connection state

export interface HostOnline {
  hostId: string;
  processId: string;
  address: string | null;
  facts: HostFacts;
}

/**
 * Marks hosts online (with address, facts and the console process holding them) in one
 * transaction; a revoked host is not marked. Answers per host whether it was.
 */
export async function hostsConnected(ctx: Ctx, list: HostOnline[]): Promise<boolean[]> {
  if (!list.length) return [];
  const at = nowIso();
  const results = await ctx.db.$client.batch(
    list.map((h) => ({
      sql: "UPDATE hosts SET online = 1, connected_to = ?, address = ?, facts = ?, last_seen_at = ? WHERE id = ? AND revoked_at IS NULL",
      args: [h.processId, h.address, JSON.stringify(h.facts), at, h.hostId],
    })),
    "write",
  );
  return results.map((r) => r.rowsAffected === 1);
}

/** Marks the host offline unless another console process has taken its connection meanwhile. */
export async function hostDisconnected(ctx: Ctx, hostId: string, processId: string): Promise<void> {
  await ctx.db
    .update(hosts)
    .set({ online: false, connectedTo: null, lastSeenAt: nowIso() })
    .where(and(eq(hosts.id, hostId), eq(hosts.connectedTo, processId)));
}

/** Marks every host of this process offline (clean shutdown). */
export async function processStopped(ctx: Ctx, processId: string): Promise<void> {
  await ctx.db.update(hosts).set({ online: false, connectedTo: null }).where(eq(hosts.connectedTo, processId));
}

/** One write for many hosts: last-seen is batched, never a write per message. */
export async function touchHosts(ctx: Ctx, hostIds: string[], at: string): Promise<void> {
  for (let i = 0; i < hostIds.length; i += 500) {
    await ctx.db.update(hosts).set({ lastSeenAt: at }).where(inArray(hosts.id, hostIds.slice(i, i + 500)));
  }
}

/** Hosts left online by a console process that died without saying so. */
export async function sweepStaleHosts(ctx: Ctx, processId: string, seenBefore: string): Promise<number> {
  const rows = await ctx.db
    .update(hosts)
    .set({ online: false, connectedTo: null })
    .where(and(eq(hosts.online, true), lt(hosts.lastSeenAt, seenBefore), or(isNull(hosts.connectedTo), ne(hosts.connectedTo, processId))))
    .returning({ id: hosts.id });
  return rows.length;
}

/** Hosts this process holds that were revoked (possibly by another process). */
export async function revokedAmong(ctx: Ctx, processId: string): Promise<string[]> {
  const rows = await ctx.db
    .select({ id: hosts.id })
    .from(hosts)
    .where(and(eq(hosts.connectedTo, processId), sql`${hosts.revokedAt} IS NOT NULL`));
  return rows.map((r) => r.id);
}

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
  if (!cmd?.appId || !cmd.appName) return;
  const appId = cmd.appId;
  const changes: AppChange[] = [];
  await ctx.db.transaction(async (tx) => {
    const owned = await tx
      .update(apps)
      .set({ phase: progress.step, updatedAt: nowIso() })
      .where(and(eq(apps.id, appId), eq(apps.hostId, hostId)))
      .returning({ id: apps.id });
    if (!owned.length) return;
    const data: Record<string, unknown> = { commandId: id, action: cmd.action, phase: progress.step, step: progress.step };
    if (progress.pct !== undefined) data.pct = progress.pct;
    if (progress.message !== undefined) data.message = progress.message;
    if (progress.output?.length) data.output = progress.output;
    changes.push(await recordEvent(tx, { appId, appName: cmd.appName!, type: "progress", data }));
  });
  publishAll(ctx, changes);
}

export type FinishOutcome = "applied" | "duplicate" | "unknown";

/**
 * Records a command's end exactly once (the row changes only while unfinished) and applies it
 * to the app: a deinstall removes the record (events stay, template links are cleared); a failed
 * deploy leaves the app STOPPED with the reason.
 */
export async function commandFinished(
  ctx: Ctx,
  hostId: string,
  r: { id: string; ok: boolean; result?: Record<string, unknown>; error?: string },
): Promise<FinishOutcome> {
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
  if (!head.appId) {
    // No app to change (ping): one conditional write, no transaction holding the write lock.
    const done = await ctx.db.update(commands).set(finish).where(gate).returning({ id: commands.id });
    return done.length ? "applied" : "duplicate";
  }
  const changes: AppChange[] = [];
  const outcome = await ctx.db.transaction(async (tx): Promise<FinishOutcome> => {
    const [cmd] = await tx
      .update(commands)
      .set(finish)
      .where(gate)
      .returning();
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
    const set: Partial<App> = { phase: null, updatedAt: nowIso() };
    if (r.ok) {
      set.lastError = null;
      const sha = r.result?.commitSha;
      if (typeof sha === "string" && SHA.test(sha)) set.commitSha = sha;
      if (cmd.action === "stop") set.status = "STOPPED";
    } else {
      set.lastError = `${cmd.action} failed: ${r.error ?? "unknown error"}`.slice(0, 4000);
      if (FAILURE_STOPS.has(cmd.action)) set.status = "STOPPED";
    }
    await tx.update(apps).set(set).where(eq(apps.id, app.id));
    const { updatedAt: _u, ...visible } = set;
    changes.push(await recordEvent(tx, { appId: app.id, appName: app.name, type: "result", data: { ...base, ...visible, ...(r.ok ? {} : { error: r.error }) } }));
    return "applied";
  });
  publishAll(ctx, changes);
  if (!r.ok && outcome === "applied" && ["provision", "reinstall", "update"].includes(head.action)) await notifyEvent(ctx, { kind: "deploy.failed", host: hostId, key: `deploy.failed:${r.id}`, detail: { commandId: r.id, action: head.action, error: r.error } });
  return outcome;
}

/** A command the agent would not run, or one that expired before it got there, ends as failed. */
export function commandRejected(ctx: Ctx, hostId: string, id: string, why: string): Promise<FinishOutcome> {
  return commandFinished(ctx, hostId, { id, ok: false, error: why });
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

/** Applies status changes to the host's own apps; writes an event per app that changed. */
export async function applyStatusReports(ctx: Ctx, hostId: string, reports: StatusReport[]): Promise<Refusal[]> {
  const refused: Refusal[] = [];
  const writes: { app: App; changed: Partial<App>; report: StatusReport }[] = [];
  const byName = await ownedApps(ctx, [...new Set(reports.map((r) => r.app))]);
  for (const r of reports) {
    const app = byName.get(r.app);
    const why = ownership(app, hostId, r.app);
    if (why || !app) {
      refused.push({ app: r.app, reason: why ?? "unknown app" });
      continue;
    }
    const next: Partial<App> = { status: r.status, health: r.health };
    if (r.phase !== undefined) next.phase = r.phase;
    if (r.lastError !== undefined) next.lastError = r.lastError;
    if (r.commitSha !== undefined) next.commitSha = r.commitSha;
    const changed = Object.fromEntries(Object.entries(next).filter(([k, v]) => (app as Record<string, unknown>)[k] !== v)) as Partial<App>;
    if (!Object.keys(changed).length) continue;
    Object.assign(app, changed);
    writes.push({ app, changed, report: r });
  }
  if (!writes.length) return refused;
  const changes: AppChange[] = [];
  await ctx.db.transaction(async (tx) => {
    for (const { app, changed, report: r } of writes) {
      await tx
        .update(apps)
        .set({ ...changed, lastProbeAt: r.at, updatedAt: nowIso() })
        .where(and(eq(apps.id, app.id), eq(apps.hostId, hostId)));
      const extra: Record<string, unknown> = {};
      if (r.containerState !== undefined) extra.containerState = r.containerState;
      if (r.exitCode !== undefined) extra.exitCode = r.exitCode;
      changes.push(await recordEvent(tx, { appId: app.id, appName: app.name, type: "status", data: { ...changed, ...extra, reportedAt: r.at } }));
    }
  });
  publishAll(ctx, changes);
  for (const w of writes) if (w.changed.status === "STOPPED") await notifyEvent(ctx, { kind: "app.stopped", app: w.app.name, host: hostId, key: `app.stopped:${w.app.name}:${w.report.at}`, detail: { at: w.report.at, exitCode: w.report.exitCode, containerState: w.report.containerState, lastError: w.report.lastError } });
  return refused;
}

/**
 * Reconciles after (re)connect: the agent's inventory sets status and commit of the host's apps
 * that have no command in flight (a queued command's own reports are newer than any inventory).
 */
export async function applyInventory(ctx: Ctx, hostId: string, items: InventoryItem[]): Promise<Refusal[]> {
  if (!items.length) return [];
  const busy = new Set(
    (
      await ctx.db
        .select({ appId: commands.appId })
        .from(commands)
        .where(and(eq(commands.hostId, hostId), inArray(commands.state, [...UNFINISHED])))
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
    const r: StatusReport = { app: item.app, status: item.status, health: app.health, at: nowIso() };
    if (item.commitSha && SHA.test(item.commitSha)) r.commitSha = item.commitSha;
    reports.push(r);
  }
  if (reports.length) refused.push(...(await applyStatusReports(ctx, hostId, reports)));
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
