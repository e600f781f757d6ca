// Cleanup of orphans, console side. The agent finds and removes orphans (agent/src/ops/cleanup.ts);
// the console only asks, through the outbox, with the host-wide `cleanup` command:
//
//   hosts.scanOrphans {id}               → cleanup {dryRun: true}: a fresh scan, nothing removed
//   hosts.cleanup {id, items?, dryRun?}  → cleanup {dryRun, items}: removal (or its dry run) of
//                                          the named orphans, or of all of them without items
//   hosts.orphans {id}                   → the latest findings, read from the newest finished
//                                          cleanup command's result (no table of its own: the
//                                          commands row is the record), and any cleanup on its way
//
// A host with `autoCleanup` on gets a scheduled cleanup every DCC_AUTO_CLEANUP_HOURS (default
// 24) from the console process that holds its socket; it removes only orphans at least that old.
// Every request is an audit row (actor: who asked); every removal's outcome is an audit row too
// (actor: agent:<host>), listing what went.
import { and, desc, eq, inArray, isNull, sql } from "drizzle-orm";
import { z } from "zod";
import { CleanupResultSchema, MAX_CLEANUP_ITEMS, OrphanRefSchema, type CleanupResult, type OrphanItem, type OrphanOutcome } from "../../agent/src/contract/cleanup";
import { HostIdSchema } from "../../agent/src/contract/protocol";
import type { Db } from "../../db/client";
import { apps, commands, hosts, type Command } from "../../db/schema";
import type { Actor, ConsoleContext } from "../context.server";
import { recordAudit } from "./audit.server";
import { enqueueCommand } from "./commands.server";
import { ServiceError } from "./errors";

export const HostOrphansInput = z.strictObject({ id: HostIdSchema });
export const HostCleanupInput = z.strictObject({
  id: HostIdSchema,
  /** Only these orphans (each still checked against the agent's fresh scan); all of them when absent. */
  items: z.array(OrphanRefSchema).min(1).max(MAX_CLEANUP_ITEMS).optional(),
  /** Report what would go and remove nothing. Default false. */
  dryRun: z.boolean().optional(),
});

/** Who scheduled cleanups are recorded as (`system:auto-cleanup`). */
export const AUTO_CLEANUP_ACTOR: Actor = { kind: "system", id: "auto-cleanup", role: "admin" };
const AUTO_CREATED_BY = `${AUTO_CLEANUP_ACTOR.kind}:${AUTO_CLEANUP_ACTOR.id}`;
const UNFINISHED = ["pending", "delivered"] as const;

export interface CleanupRun {
  commandId: string;
  dryRun: boolean;
  /** The items it was limited to (absent: all orphans). */
  items?: { kind: string; id: string }[];
  scheduled: boolean;
  requestedBy: string | null;
  issuedAt: string;
  finishedAt: string | null;
  state: Command["state"];
  ok: boolean | null;
  error: string | null;
  selected: OrphanOutcome[];
  removed: OrphanOutcome[];
  skipped: OrphanOutcome[];
  failed: OrphanOutcome[];
  freedBytes: number;
}

export interface HostOrphans {
  hostId: string;
  online: boolean;
  autoCleanup: boolean;
  autoCleanupHours: number;
  /** The newest findings: the orphans on the host after the newest successful cleanup command. */
  scan: { commandId: string; scannedAt: string; items: OrphanItem[]; foundTotal: number; totalBytes: number; truncated: boolean } | null;
  /** The newest finished cleanup command (a scan, a dry run or a removal), with what it chose and did. */
  last: CleanupRun | null;
  /** A cleanup command on its way (queued or running on the agent). */
  pending: CleanupRun | null;
}

function parseResult(row: Command): CleanupResult | null {
  if (row.state !== "done" || !row.result) return null;
  const r = CleanupResultSchema.safeParse(row.result);
  return r.success ? r.data : null;
}

function toRun(row: Command): CleanupRun {
  const params = row.params as { dryRun?: boolean; items?: { kind: string; id: string }[] };
  const result = parseResult(row);
  const unreadable = row.state === "done" && !result;
  return {
    commandId: row.id,
    dryRun: params.dryRun === true,
    ...(params.items ? { items: params.items } : {}),
    scheduled: row.createdBy === AUTO_CREATED_BY,
    requestedBy: row.createdBy,
    issuedAt: row.issuedAt,
    finishedAt: row.finishedAt,
    state: row.state,
    ok: row.state === "done" ? !unreadable : row.state === "failed" ? false : null,
    error: row.state === "failed" ? row.error ?? "failed" : unreadable ? "the agent's answer could not be read (an older agent, or cut short)" : null,
    selected: result?.selected ?? [],
    removed: result?.removed ?? [],
    skipped: result?.skipped ?? [],
    failed: result?.failed ?? [],
    freedBytes: result?.freedBytes ?? 0,
  };
}

async function requireHost(db: Db, id: string) {
  const [row] = await db.select().from(hosts).where(eq(hosts.id, id));
  if (!row) throw ServiceError.field("NOT_FOUND", "id", `does not name a known host (${id})`);
  return row;
}

/** The host's latest orphan findings and cleanup runs. */
export async function getOrphans(ctx: Pick<ConsoleContext, "db" | "config">, id: string): Promise<HostOrphans> {
  const host = await requireHost(ctx.db, id);
  // Newest first; a host has few cleanup commands a day, so a short window holds the newest of each kind.
  const rows = await ctx.db
    .select()
    .from(commands)
    .where(and(eq(commands.hostId, id), eq(commands.action, "cleanup")))
    .orderBy(desc(sql`rowid`))
    .limit(50);
  const pendingRow = rows.find((r) => (UNFINISHED as readonly string[]).includes(r.state));
  const lastRow = rows.find((r) => r.state === "done" || r.state === "failed");
  let scan: HostOrphans["scan"] = null;
  for (const r of rows) {
    const result = parseResult(r);
    if (!result) continue;
    scan = {
      commandId: r.id,
      scannedAt: result.scannedAt,
      items: result.found,
      foundTotal: result.foundTotal,
      totalBytes: result.found.reduce((s, i) => s + i.sizeBytes, 0),
      truncated: result.truncated === true || result.found.length < result.foundTotal,
    };
    break;
  }
  return {
    hostId: host.id,
    online: host.online && host.revokedAt == null,
    autoCleanup: host.autoCleanup,
    autoCleanupHours: ctx.config.autoCleanupHours,
    scan,
    last: lastRow ? toRun(lastRow) : null,
    pending: pendingRow ? toRun(pendingRow) : null,
  };
}

export interface CleanupRequested {
  commandId: string;
  /** True when the host is offline: the command waits in the outbox until it connects. */
  queued: boolean;
  /** True when an identical request was already on its way and that one is returned. */
  existing: boolean;
}

async function request(
  ctx: ConsoleContext,
  actor: Actor,
  hostId: string,
  params: { dryRun: boolean; items?: { kind: string; id: string }[]; minAgeSeconds?: number; keep?: string[] },
  audit: { action: string; detail?: Record<string, unknown> },
): Promise<CleanupRequested> {
  const host = await requireHost(ctx.db, hostId);
  if (host.revokedAt) throw ServiceError.field("PRECONDITION_FAILED", "id", "names a revoked host");
  const queued = !host.online;
  // Defence in depth: what the console still records on this host is never an orphan, whatever
  // the agent's own records say (e.g. workspaces restored onto a box whose agent state was not).
  const known = await ctx.db.select({ name: apps.name }).from(apps).where(eq(apps.hostId, hostId)).limit(2000);
  if (known.length) params = { ...params, keep: known.map((a) => a.name).sort() };
  // Asking again for the same thing while it is on its way adds nothing.
  const open = await ctx.db
    .select()
    .from(commands)
    .where(and(eq(commands.hostId, hostId), eq(commands.action, "cleanup"), inArray(commands.state, [...UNFINISHED])));
  const same = open.find((c) => JSON.stringify(c.params) === JSON.stringify(params));
  if (same) return { commandId: same.id, queued, existing: true };
  let commandId = "";
  await ctx.db.transaction(async (tx) => {
    commandId = await enqueueCommand(tx, actor, { hostId, appId: null, appName: null, action: "cleanup", params }, ctx.metrics);
    await recordAudit(tx, actor, {
      action: audit.action,
      target: hostId,
      detail: {
        commandId,
        dryRun: params.dryRun,
        items: params.items ? params.items.slice(0, 50).map((i) => `${i.kind}:${i.id}`) : "all orphans",
        ...(params.items && params.items.length > 50 ? { itemCount: params.items.length } : {}),
        ...audit.detail,
      },
    });
  });
  ctx.dispatcher.kick(hostId);
  return { commandId, queued, existing: false };
}

/** A fresh dry-run scan of the host's orphans (nothing is removed); read it with getOrphans. */
export function scanOrphans(ctx: ConsoleContext, actor: Actor, id: string): Promise<CleanupRequested> {
  return request(ctx, actor, id, { dryRun: true }, { action: "host.orphans.scan" });
}

/** Removal of orphans (or its dry run): the named ones that are still orphans, or all of them. */
export function cleanupHost(ctx: ConsoleContext, actor: Actor, input: z.infer<typeof HostCleanupInput>): Promise<CleanupRequested> {
  const params = { dryRun: input.dryRun ?? false, ...(input.items ? { items: input.items } : {}) };
  return request(ctx, actor, input.id, params, { action: "host.cleanup" });
}

/**
 * Scheduled cleanup: for the hosts this process holds with autoCleanup on, a removal of every
 * orphan at least `hours` old, once per `hours`. Returns the hosts a command was queued for, and
 * why it could not be queued for others.
 */
export async function runAutoCleanup(ctx: ConsoleContext, processId: string, now = Date.now()): Promise<{ queued: string[]; failures: string[] }> {
  const everyMs = ctx.config.autoCleanupHours * 3_600_000;
  const due = await ctx.db
    .select({ id: hosts.id })
    .from(hosts)
    .where(and(eq(hosts.autoCleanup, true), eq(hosts.online, true), eq(hosts.connectedTo, processId), isNull(hosts.revokedAt)));
  const queued: string[] = [];
  const failures: string[] = [];
  for (const { id } of due) {
    const [last] = await ctx.db
      .select({ issuedAt: commands.issuedAt })
      .from(commands)
      .where(and(eq(commands.hostId, id), eq(commands.action, "cleanup"), eq(commands.createdBy, AUTO_CREATED_BY)))
      .orderBy(desc(sql`rowid`))
      .limit(1);
    if (last && now - Date.parse(last.issuedAt) < everyMs) continue;
    try {
      const r = await request(
        ctx,
        AUTO_CLEANUP_ACTOR,
        id,
        { dryRun: false, minAgeSeconds: Math.floor(everyMs / 1000) },
        { action: "host.cleanup", detail: { scheduled: true, everyHours: ctx.config.autoCleanupHours } },
      );
      if (!r.existing) queued.push(id);
    } catch (e) {
      // One host's trouble (revoked meanwhile, a busy database) does not hold up the others.
      failures.push(`${id}: ${(e as Error).message}`);
    }
  }
  return { queued, failures };
}

/** Turns the scheduled cleanup of a host on or off (inside the caller's transaction). */
export async function setAutoCleanup(tx: Pick<Db, "update" | "insert">, actor: Actor, hostId: string, from: boolean, to: boolean): Promise<void> {
  if (from === to) return;
  await tx.update(hosts).set({ autoCleanup: to }).where(eq(hosts.id, hostId));
  await recordAudit(tx, actor, { action: "host.update", target: hostId, detail: { autoCleanup: { from, to } } });
}

/**
 * Called when a cleanup command's result is recorded (inside that transaction): a removal's
 * outcome becomes an audit row by the agent, naming what went and what could not.
 */
export async function recordCleanupOutcome(
  tx: Pick<Db, "insert">,
  hostId: string,
  cmd: Pick<Command, "id" | "params" | "createdBy">,
  r: { ok: boolean; result?: Record<string, unknown>; error?: string },
): Promise<void> {
  const params = cmd.params as { dryRun?: boolean };
  if (params.dryRun === true) return;
  const agent: Actor = { kind: "agent", id: hostId, role: "admin" };
  const parsed = r.ok ? CleanupResultSchema.safeParse(r.result) : null;
  const name = (o: OrphanOutcome) => `${o.kind}:${o.name ?? o.id}`;
  await recordAudit(tx, agent, {
    action: "host.cleanup.result",
    target: hostId,
    outcome: r.ok && parsed?.success && parsed.data.failed.length === 0 ? "ok" : "error",
    detail: {
      commandId: cmd.id,
      requestedBy: cmd.createdBy,
      ...(parsed?.success
        ? {
            removed: parsed.data.removed.slice(0, 100).map(name),
            removedCount: parsed.data.removed.length,
            freedBytes: parsed.data.freedBytes,
            failed: parsed.data.failed.slice(0, 20).map((o) => `${name(o)}: ${o.reason ?? "failed"}`),
            skipped: parsed.data.skipped.length,
          }
        : { error: (r.error ?? "unreadable result").slice(0, 1000) }),
    },
  });
}

/** Waits (polling the outbox row) until a command is finished or `timeoutMs` passed; true when finished. */
export async function awaitCommand(ctx: Pick<ConsoleContext, "db">, commandId: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [row] = await ctx.db.select({ state: commands.state }).from(commands).where(eq(commands.id, commandId));
    if (!row || row.state === "done" || row.state === "failed") return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 150));
  }
}
