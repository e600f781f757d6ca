import { and, asc, eq, isNotNull, lte, sql } from "drizzle-orm";
import { z } from "zod";
import { readHostFacts, type HostFacts } from "../../agent/src/contract/facts";
import { HostIdSchema } from "../../agent/src/contract/protocol";
import { apps, hosts, type AppHealth, type AppStatus, type Host, type HostPull } from "../../db/schema";
import { presenceChanged } from "./app-status.server";
import type { Actor, ConsoleContext } from "../context.server";
import { recordAudit } from "./audit.server";
import { setAutoCleanup } from "./cleanup.server";
import { enqueueCommand } from "./commands.server";
import { HostNameSchema } from "./enrollment.server";
import { ServiceError } from "./errors";

/** The host object of the API: `online` is a boolean, facts are what the agent reported. */
export interface HostDto {
  id: string;
  name: string;
  online: boolean;
  lastSeenAt: string | null;
  address: string | null;
  facts: HostFacts;
  revoked: boolean;
  /** Scheduled cleanup of orphans on this host (see cleanup.server.ts). */
  autoCleanup: boolean;
  /** The newest pre-pull of an image on the host and how far it got (see prepull.server.ts). */
  pull: HostPull | null;
  createdAt: string;
}

export function toHostDto(h: Host): HostDto {
  return {
    id: h.id,
    name: h.name,
    online: h.online && h.revokedAt == null,
    lastSeenAt: h.lastSeenAt,
    address: h.address,
    facts: readHostFacts(h.facts),
    revoked: h.revokedAt != null,
    autoCleanup: h.autoCleanup,
    pull: h.pull ?? null,
    createdAt: h.createdAt,
  };
}

export async function listHosts(ctx: Pick<ConsoleContext, "db">): Promise<HostDto[]> {
  const rows = await ctx.db.select().from(hosts).orderBy(asc(hosts.name));
  return rows.map(toHostDto);
}

export async function getHost(ctx: Pick<ConsoleContext, "db">, id: string): Promise<HostDto> {
  const [row] = await ctx.db.select().from(hosts).where(eq(hosts.id, id));
  if (!row) throw ServiceError.field("NOT_FOUND", "id", `does not name a known host (${id})`);
  return toHostDto(row);
}

/** A new name, and/or the scheduled cleanup of orphans switched on or off. */
export const HostUpdateInput = z.strictObject({ id: HostIdSchema, name: HostNameSchema.optional(), autoCleanup: z.boolean().optional() });
export const HostPingInput = z.strictObject({
  id: HostIdSchema,
  delayMs: z.number().int().min(0).max(60_000).optional(),
  echo: z.string().max(200).optional(),
});

export async function updateHost(ctx: Pick<ConsoleContext, "db">, actor: Actor, input: z.infer<typeof HostUpdateInput>): Promise<HostDto> {
  const before = await getHost(ctx, input.id);
  const rename = input.name !== undefined && before.name !== input.name;
  const cleanup = input.autoCleanup !== undefined && before.autoCleanup !== input.autoCleanup;
  if (!rename && !cleanup) return before;
  await ctx.db.transaction(async (tx) => {
    if (rename) {
      await tx.update(hosts).set({ name: input.name }).where(eq(hosts.id, input.id));
      await recordAudit(tx, actor, { action: "host.update", target: input.id, detail: { name: { from: before.name, to: input.name } } });
    }
    if (cleanup) await setAutoCleanup(tx, actor, input.id, before.autoCleanup, input.autoCleanup!);
  });
  return getHost(ctx, input.id);
}

export interface RevokeAnswer extends HostDto {
  /** The apps placed on the host: they keep their record (grey, host offline) until removed. */
  apps: string[];
  /** What happens to them, in words. */
  appsNote: string;
}

/**
 * Ends a host's access: its socket closes at once and its agent is refused from now on. Its apps
 * stay on the box, unreachable to the console; `apps.deinstall { name, force: true }` removes
 * each record (name, port and GPUs freed). The answer names them.
 */
export async function revokeHost(ctx: Pick<ConsoleContext, "db" | "dispatcher" | "bus">, actor: Actor, id: string): Promise<RevokeAnswer> {
  const before = await getHost(ctx, id);
  const placed = (await ctx.db.select({ name: apps.name }).from(apps).where(eq(apps.hostId, id)).orderBy(asc(apps.name))).map((a) => a.name);
  if (!before.revoked) {
    await ctx.db.transaction(async (tx) => {
      // connectedTo stays: the console process holding the socket finds the revocation by it.
      await tx.update(hosts).set({ revokedAt: new Date().toISOString(), online: false }).where(eq(hosts.id, id));
      await recordAudit(tx, actor, { action: "host.revoke", target: id, detail: { name: before.name, apps: placed } });
    });
    if (before.online) await presenceChanged(ctx, [id], false);
  }
  ctx.dispatcher.disconnect(id, "host revoked");
  const appsNote = placed.length
    ? `${placed.length} app(s) stay on the host, out of the console's reach (grey): ${placed.join(", ")}. Remove each with apps.deinstall { name, force: true } (admin) to free its name, port and GPUs; their containers and files stay on the box.`
    : "no apps were placed on this host";
  return { ...(await getHost(ctx, id)), apps: placed, appsNote };
}

/** Queues the harmless built-in `ping` command: an end-to-end check of the signed channel. */
export async function pingHost(ctx: ConsoleContext, actor: Actor, input: z.infer<typeof HostPingInput>): Promise<{ commandId: string }> {
  const host = await getHost(ctx, input.id);
  if (host.revoked) throw ServiceError.field("PRECONDITION_FAILED", "id", "names a revoked host");
  const params: Record<string, unknown> = {};
  if (input.delayMs !== undefined) params.delayMs = input.delayMs;
  if (input.echo !== undefined) params.echo = input.echo;
  const commandId = await enqueueCommand(ctx.db, actor, { hostId: host.id, appId: null, appName: null, action: "ping", params });
  ctx.dispatcher.kick(host.id);
  return { commandId };
}

/** The agent's facts again (GPU ledger, preflight, model store sizes): they replace what the host row had. */
export async function updateHostFacts(ctx: Pick<ConsoleContext, "db">, hostId: string, facts: HostFacts): Promise<void> {
  await ctx.db.update(hosts).set({ facts }).where(eq(hosts.id, hostId));
}

// ---- apps per host, as the Hosts page shows them

/** Apps listed under each host on the Hosts page; the rest are counted and found on the dashboard. */
export const HOST_APPS_LISTED = 25;

export interface HostAppRow {
  name: string;
  status: AppStatus;
  health: AppHealth;
  phase: string | null;
  lastError: string | null;
}

export interface HostApps {
  /** Apps placed on the host, and how many of them are in each status. */
  total: number;
  byStatus: Partial<Record<AppStatus, number>>;
  /** The first `HOST_APPS_LISTED` by name. */
  listed: HostAppRow[];
  /** Apps holding GPUs of the host (device ids), wherever they are in the order. */
  gpuHolders: { name: string; gpuDevices: string[] }[];
}

/**
 * What the Hosts page shows of each host's apps, read for all hosts at once: counts per status,
 * the first few by name and the GPU holders. The page refreshes every few seconds, so it never
 * ships every app of a fleet (10,000 apps were a 5 MB page and a second of the console's time).
 */
export async function hostApps(ctx: Pick<ConsoleContext, "db">, listed = HOST_APPS_LISTED): Promise<Record<string, HostApps>> {
  const { db } = ctx;
  const placed = isNotNull(apps.hostId);
  const ranked = db
    .select({
      hostId: apps.hostId,
      name: apps.name,
      status: apps.status,
      health: apps.health,
      phase: apps.phase,
      lastError: apps.lastError,
      rank: sql<number>`row_number() OVER (PARTITION BY ${apps.hostId} ORDER BY ${apps.name})`.as("rank"),
    })
    .from(apps)
    .where(placed)
    .as("ranked");
  const [counts, first, holders] = await Promise.all([
    db.select({ hostId: apps.hostId, status: apps.status, n: sql<number>`count(*)` }).from(apps).where(placed).groupBy(apps.hostId, apps.status),
    db.select().from(ranked).where(lte(ranked.rank, listed)).orderBy(ranked.hostId, ranked.name),
    db
      .select({ hostId: apps.hostId, name: apps.name, gpuDevices: apps.gpuDevices })
      .from(apps)
      .where(and(placed, sql`${apps.gpuDevices} IS NOT NULL AND ${apps.gpuDevices} NOT IN ('[]', 'null')`)),
  ]);
  const out: Record<string, HostApps> = {};
  const of = (hostId: string) => (out[hostId] ??= { total: 0, byStatus: {}, listed: [], gpuHolders: [] });
  for (const c of counts) {
    const h = of(c.hostId!);
    h.total += c.n;
    h.byStatus[c.status] = c.n;
  }
  for (const { hostId, rank: _rank, ...app } of first) of(hostId!).listed.push(app);
  for (const g of holders) of(g.hostId!).gpuHolders.push({ name: g.name, gpuDevices: g.gpuDevices ?? [] });
  return out;
}
// ---- end apps per host
