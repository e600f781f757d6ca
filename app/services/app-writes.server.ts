// What the app write use cases (register, update, place) share: the hosts an app may go to, the
// GPUs it holds, the port check, and the database's unique constraints read as field errors.
import { and, eq, inArray, isNull, ne, or, sql } from "drizzle-orm";
import { readHostFacts } from "../../agent/src/contract/facts";
import type { Db } from "../../db/client";
import { prepared } from "../../db/prepared";
import { apps, gpuAssignments, hosts, type App } from "../../db/schema";
import { ServiceError } from "./errors";
import type { Tx } from "./group-commit.server";
import type { HostCandidate } from "./placement.server";

type Reader = Pick<Db, "select"> | Tx;

/**
 * The candidate reads, prepared once for each of the two ways of choosing hosts: the one host
 * named (online or not), or every online host not revoked. Held GPUs and a port's use are read
 * for exactly those hosts, one indexed lookup each.
 */
function candidateQueries(named: boolean) {
  const chosen = named ? eq(hosts.id, sql.placeholder("only")) : and(eq(hosts.online, true), isNull(hosts.revokedAt));
  // `IN (subquery)`, not a join: SQLite then searches the (host, …) indexes once per chosen host
  // instead of scanning every app.
  const chosenIds = (db: Reader) => db.select({ id: hosts.id }).from(hosts).where(chosen);
  return {
    hosts: prepared((db: Reader) =>
      db.select({ id: hosts.id, name: hosts.name, online: hosts.online, revokedAt: hosts.revokedAt, facts: hosts.facts, appCount: hosts.appCount }).from(hosts).where(chosen),
    ),
    held: prepared((db: Reader) =>
      db.select({ hostId: gpuAssignments.hostId, device: gpuAssignments.device }).from(gpuAssignments).where(inArray(gpuAssignments.hostId, chosenIds(db))),
    ),
    ports: prepared((db: Reader) =>
      db
        .select({ hostId: apps.hostId, port: apps.port })
        .from(apps)
        .where(and(inArray(apps.hostId, chosenIds(db)), eq(apps.port, sql.placeholder("port")))),
    ),
  };
}
/** Exported for the query-plan test (db/prepared.test.ts). */
export const CANDIDATE_READS = { named: candidateQueries(true), online: candidateQueries(false) };

/**
 * Hosts an app may be placed on: the one host named (`only`, online or not), else every online
 * host that is not revoked, each with its app count and held GPUs; with `port`, each host's
 * `usedPorts` says whether that port is taken there (without it, ports are not read).
 */
export async function hostCandidates(db: Reader, only?: string, port?: number): Promise<HostCandidate[]> {
  const q = only !== undefined ? CANDIDATE_READS.named : CANDIDATE_READS.online;
  const args = { only, port };
  const rows = await q.hosts(db).all(args);
  if (!rows.length) return [];
  const held = await q.held(db).all(args);
  const ports = port === undefined ? null : await q.ports(db).all(args);
  return rows.map((h) => ({
    id: h.id,
    name: h.name,
    online: h.online,
    revoked: h.revokedAt != null,
    facts: readHostFacts(h.facts),
    appCount: h.appCount,
    heldGpus: held.filter((g) => g.hostId === h.id).map((g) => g.device),
    ...(ports ? { usedPorts: ports.filter((p) => p.hostId === h.id).map((p) => p.port) } : {}),
  }));
}

const rowByName = prepared((db: Reader) => db.select().from(apps).where(eq(apps.name, sql.placeholder("name"))));

/** The app's row, or undefined when no app has that name. */
export async function appRow(db: Reader, name: string): Promise<App | undefined> {
  return (await rowByName(db).all({ name }))[0];
}

/** The app's row; NOT_FOUND naming the field `name` when there is none. */
export async function requireAppRow(db: Reader, name: string): Promise<App> {
  const row = await appRow(db, name);
  if (!row) throw ServiceError.field("NOT_FOUND", "name", `does not name an existing app (${name})`);
  return row;
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
  const shape = `${hostId ? "host" : "waiting"}${opts.exceptName !== undefined ? "-except" : ""}${opts.claim !== undefined ? "-claim" : ""}`;
  const clashes = await (portClashes[shape] ??= portClashQuery(hostId !== null, opts.exceptName !== undefined, opts.claim !== undefined))(db).all({
    hostId,
    port,
    exceptName: opts.exceptName,
    claim: opts.claim,
  });
  if (opts.claim !== undefined && clashes.some((c) => c.name === opts.claim)) throw ServiceError.field("CONFLICT", "name", "is already taken");
  if (clashes.length) {
    const where = hostId ? "on this host" : "waiting for a host";
    throw ServiceError.field("CONFLICT", "port", `is already used by app ${clashes[0].name} ${where}`);
  }
}

/** The port check's query, one prepared statement per shape (host or waiting, except, claim). */
function portClashQuery(onHost: boolean, except: boolean, claim: boolean) {
  return prepared((db: Reader) => {
    const portClash = and(
      onHost ? eq(apps.hostId, sql.placeholder("hostId")) : isNull(apps.hostId),
      eq(apps.port, sql.placeholder("port")),
      except ? ne(apps.name, sql.placeholder("exceptName")) : undefined,
    );
    return db
      .select({ name: apps.name })
      .from(apps)
      .where(claim ? or(eq(apps.name, sql.placeholder("claim")), portClash) : portClash)
      .limit(2);
  });
}
const portClashes: Partial<Record<string, ReturnType<typeof portClashQuery>>> = {};

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
