// Host presence: which console process holds each host's socket, and whether it is online. The
// process that holds a socket is the one that says so (and keeps saying so: a process that stalled
// and was swept by another corrects the record on its next refresh). Every change of presence is
// passed to live viewers as a grey (or no longer grey) light on each of the host's apps.
import { and, eq, inArray, isNull, lt, ne, or, sql } from "drizzle-orm";
import type { HostFacts } from "../../agent/src/contract/facts";
import { hosts } from "../../db/schema";
import type { ConsoleContext } from "../context.server";
import { presenceChanged } from "./app-status.server";
import { notifyEvent } from "./notify.server";

type Ctx = Pick<ConsoleContext, "db" | "bus">;

const nowIso = () => new Date().toISOString();

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
  const before = await ctx.db
    .select({ id: hosts.id })
    .from(hosts)
    .where(and(inArray(hosts.id, list.map((h) => h.hostId)), eq(hosts.online, false)));
  const results = await ctx.db.$client.batch(
    list.map((h) => ({
      sql: "UPDATE hosts SET online = 1, connected_to = ?, address = ?, facts = ?, last_seen_at = ? WHERE id = ? AND revoked_at IS NULL",
      args: [h.processId, h.address, JSON.stringify(h.facts), at, h.hostId],
    })),
    "write",
  );
  const ok = results.map((r) => r.rowsAffected === 1);
  const cameBack = new Set(list.filter((_, i) => ok[i]).map((h) => h.hostId));
  await presenceChanged(ctx, before.map((b) => b.id).filter((id) => cameBack.has(id)), true);
  return ok;
}

/** Marks the host offline unless another console process has taken its connection meanwhile. */
export async function hostDisconnected(ctx: Ctx, hostId: string, processId: string): Promise<void> {
  const gone = await ctx.db
    .update(hosts)
    .set({ online: false, connectedTo: null, lastSeenAt: nowIso() })
    .where(and(eq(hosts.id, hostId), eq(hosts.connectedTo, processId), eq(hosts.online, true)))
    .returning({ id: hosts.id });
  await presenceChanged(ctx, gone.map((g) => g.id), false);
}

/** Marks every host of this process offline (clean shutdown). */
export async function processStopped(ctx: Ctx, processId: string): Promise<void> {
  const gone = await ctx.db
    .update(hosts)
    .set({ online: false, connectedTo: null })
    .where(and(eq(hosts.connectedTo, processId), eq(hosts.online, true)))
    .returning({ id: hosts.id });
  await presenceChanged(ctx, gone.map((g) => g.id), false);
}

/**
 * The holder of these sockets says they are online, here, and seen now: one write for many hosts.
 * A host another process had marked offline or taken (it thought this one dead) is corrected.
 */
export async function refreshHeldHosts(ctx: Ctx, processId: string, hostIds: string[], at: string): Promise<void> {
  for (let i = 0; i < hostIds.length; i += 500) {
    const slice = hostIds.slice(i, i + 500);
    const wrong = await ctx.db
      .select({ id: hosts.id, online: hosts.online })
      .from(hosts)
      .where(and(inArray(hosts.id, slice), isNull(hosts.revokedAt), or(eq(hosts.online, false), isNull(hosts.connectedTo), ne(hosts.connectedTo, processId))));
    await ctx.db
      .update(hosts)
      .set({ lastSeenAt: at, online: true, connectedTo: processId })
      .where(and(inArray(hosts.id, slice), isNull(hosts.revokedAt)));
    await presenceChanged(ctx, wrong.filter((w) => !w.online).map((w) => w.id), true);
  }
}

/** Hosts left online by a console process that died (or stalled) without saying so. */
export async function sweepStaleHosts(ctx: Ctx, processId: string, seenBefore: string): Promise<number> {
  const rows = await ctx.db
    .update(hosts)
    .set({ online: false, connectedTo: null })
    .where(and(eq(hosts.online, true), lt(hosts.lastSeenAt, seenBefore), or(isNull(hosts.connectedTo), ne(hosts.connectedTo, processId))))
    .returning({ id: hosts.id });
  await presenceChanged(ctx, rows.map((r) => r.id), false);
  for (const r of rows) await notifyEvent(ctx, { kind: "host.offline", host: r.id, key: `host.offline:${r.id}:${new Date().toISOString()}` });
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
