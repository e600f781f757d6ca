// What the app write use cases (register, update, place) share: the hosts an app may go to, the
// GPUs it holds, the port check, and the database's unique constraints read as field errors.
import { and, eq, inArray, isNull, ne, or, sql } from "drizzle-orm";
import { HostFactsSchema } from "../../agent/src/contract/facts";
import type { Db } from "../../db/client";
import { apps, gpuAssignments, hosts } from "../../db/schema";
import { ServiceError } from "./errors";
import type { Tx } from "./group-commit.server";
import type { HostCandidate } from "./placement.server";

type Reader = Pick<Db, "select"> | Tx;

/**
 * Hosts an app may be placed on: the one host named (`only`, online or not), else every online
 * host that is not revoked. Counts and held GPUs are read for those hosts only (no read of every
 * app when there is no host to choose between); with `port`, each host's `usedPorts` says whether
 * that port is taken there (without it, ports are not read).
 */
export async function hostCandidates(db: Reader, only?: string, port?: number): Promise<HostCandidate[]> {
  const rows = await db
    .select({ id: hosts.id, name: hosts.name, online: hosts.online, revokedAt: hosts.revokedAt, facts: hosts.facts })
    .from(hosts)
    .where(only !== undefined ? eq(hosts.id, only) : and(eq(hosts.online, true), isNull(hosts.revokedAt)));
  if (!rows.length) return [];
  const ids = rows.map((h) => h.id);
  // With one candidate there is nothing to balance: its app count does not matter.
  const counts =
    rows.length > 1
      ? await db.select({ hostId: apps.hostId, n: sql<number>`count(*)` }).from(apps).where(inArray(apps.hostId, ids)).groupBy(apps.hostId)
      : [];
  const held = await db.select().from(gpuAssignments).where(inArray(gpuAssignments.hostId, ids));
  // With a port to place: which of these hosts already have an app on it (one indexed lookup, not
  // every app's port).
  const ports = port === undefined ? null : await db.select({ hostId: apps.hostId, port: apps.port }).from(apps).where(and(inArray(apps.hostId, ids), eq(apps.port, port)));
  return rows.map((h) => ({
    id: h.id,
    name: h.name,
    online: h.online,
    revoked: h.revokedAt != null,
    facts: HostFactsSchema.catch({}).parse(h.facts),
    appCount: counts.find((c) => c.hostId === h.id)?.n ?? 0,
    heldGpus: held.filter((g) => g.hostId === h.id).map((g) => g.device),
    ...(ports ? { usedPorts: ports.filter((p) => p.hostId === h.id).map((p) => p.port) } : {}),
  }));
}

/** Holds the app's GPUs in the unique (host, device) table: a GPU taken meanwhile fails the transaction. */
export async function holdGpus(tx: Tx, appId: string, hostId: string | null, devices: string[]): Promise<void> {
  await tx.delete(gpuAssignments).where(eq(gpuAssignments.appId, appId));
  if (hostId && devices.length) await tx.insert(gpuAssignments).values(devices.map((device) => ({ hostId, device, appId })));
}

/**
 * The port is free on the host (or among apps waiting for one). With `claim`, the name a new app
 * takes is checked in the same query: a taken name is reported before a taken port.
 */
export async function assertPortFree(db: Reader, hostId: string | null, port: number, opts: { exceptName?: string; claim?: string } = {}): Promise<void> {
  const portClash = and(hostId ? eq(apps.hostId, hostId) : isNull(apps.hostId), eq(apps.port, port), opts.exceptName ? ne(apps.name, opts.exceptName) : undefined);
  const clashes = await db
    .select({ name: apps.name })
    .from(apps)
    .where(opts.claim !== undefined ? or(eq(apps.name, opts.claim), portClash) : portClash)
    .limit(2);
  if (opts.claim !== undefined && clashes.some((c) => c.name === opts.claim)) throw ServiceError.field("CONFLICT", "name", "is already taken");
  if (clashes.length) {
    const where = hostId ? "on this host" : "waiting for a host";
    throw ServiceError.field("CONFLICT", "port", `is already used by app ${clashes[0].name} ${where}`);
  }
}

export function isUniqueViolation(e: unknown, index: string): boolean {
  const text = `${(e as Error)?.message ?? ""} ${String((e as { cause?: unknown })?.cause ?? "")}`;
  return text.includes("UNIQUE constraint failed") && text.includes(index);
}

/** A unique constraint that fired (two writers raced past the checks) as the field error it means. */
export function conflictOf(e: unknown): ServiceError | null {
  if (isUniqueViolation(e, "apps.name")) return ServiceError.field("CONFLICT", "name", "is already taken");
  if (isUniqueViolation(e, "apps.host_id")) return ServiceError.field("CONFLICT", "port", "is already used on this host");
  if (isUniqueViolation(e, "gpu_assignments")) return ServiceError.field("CONFLICT", "gpu", "the GPU chosen for this app was just given to another app; try again");
  return null;
}

/** Ports taken on a host (or among apps waiting for one, with `hostId` null). */
export async function usedPorts(db: Reader, hostId: string | null): Promise<number[]> {
  const rows = await db.select({ port: apps.port }).from(apps).where(hostId ? eq(apps.hostId, hostId) : isNull(apps.hostId));
  return rows.map((r) => r.port);
}
