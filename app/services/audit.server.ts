// The audit log: appended inside the same transaction as the change it records, never updated or
// deleted (the database's triggers refuse both), read by admins through `audit.list`.
import { and, desc, eq, gte, lt, lte, sql, type SQL } from "drizzle-orm";
import { z } from "zod";
import type { Db } from "../../db/client";
import { placeholders, prepared } from "../../db/prepared";
import { auditLog, type AuditEntry } from "../../db/schema";
import type { Actor } from "../context.server";
import { ServiceError } from "./errors";

type Tx = Pick<Db, "insert">;

const insertAudit = prepared((db: Tx) =>
  db.insert(auditLog).values(placeholders(["actor", "action", "target", "sourceAddress", "outcome", "detail"])),
);

export interface AuditInput {
  action: string;
  target?: string | null;
  outcome?: "ok" | "denied" | "error";
  detail?: Record<string, unknown>;
}

const SECRET_KEY = /pass(word)?|secret|token|authorization|cookie|api[-_]?key|private[-_]?key|credential/i;
const SECRET_VALUE = /\b(dcc_[A-Za-z0-9_-]{20,}|Bearer\s+\S+)/g;

/** Secrets never reach the audit log: keys that name one are masked, token-looking values are cut. */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 6) return "[nested]";
  if (typeof value === "string") return value.replace(SECRET_VALUE, "[redacted]");
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, SECRET_KEY.test(k) && !/^(passwordChanged|tokenId)$/.test(k) ? "[redacted]" : redact(v, depth + 1)]),
    );
  }
  return value;
}

/** Appends one audit row; called inside the same transaction as the change it records. */
export async function recordAudit(tx: Tx, actor: Actor, entry: AuditInput): Promise<void> {
  await insertAudit(tx).run({
    actor: `${actor.kind}:${actor.id}`,
    action: entry.action,
    target: entry.target ?? null,
    sourceAddress: actor.address ?? null,
    outcome: entry.outcome ?? "ok",
    detail: entry.detail ? (redact(entry.detail) as Record<string, unknown>) : null,
  });
}

const Filter = z.string().min(1).max(200);
const Instant = z.iso.datetime({ offset: true, error: "must be an ISO 8601 date-time" });

export const AuditListInput = z
  .strictObject({
    /** `user:alice`, `token:tok_…`, `token:admin-env`, …; a trailing `*` matches a prefix (`token:*`). */
    actor: Filter.optional(),
    /** `app.create`, …; a trailing `*` matches a prefix (`app.*`). */
    action: Filter.optional(),
    target: Filter.optional(),
    outcome: z.enum(["ok", "denied", "error"]).optional(),
    since: Instant.optional(),
    until: Instant.optional(),
    /** The `nextCursor` of the previous page. */
    cursor: z.number().int().positive().optional(),
    limit: z.number().int().min(1).max(200).optional(),
  })
  .optional();
export type AuditListInput = z.infer<typeof AuditListInput>;

function match(column: typeof auditLog.actor | typeof auditLog.action | typeof auditLog.target, value: string): SQL {
  if (!value.endsWith("*")) return eq(column, value);
  const prefix = value.slice(0, -1);
  return sql`substr(${column}, 1, ${prefix.length}) = ${prefix}`;
}

/** Newest first, `limit` at a time; `nextCursor` is null on the last page. */
export async function listAudit(ctx: { db: Db }, input: AuditListInput): Promise<{ items: AuditEntry[]; nextCursor: number | null }> {
  const f = input ?? {};
  if (f.since && f.until && Date.parse(f.since) > Date.parse(f.until)) throw ServiceError.field("BAD_REQUEST", "until", "must not be before since");
  const where: SQL[] = [];
  if (f.actor) where.push(match(auditLog.actor, f.actor));
  if (f.action) where.push(match(auditLog.action, f.action));
  if (f.target) where.push(match(auditLog.target, f.target));
  if (f.outcome) where.push(eq(auditLog.outcome, f.outcome));
  if (f.since) where.push(gte(auditLog.at, new Date(f.since).toISOString()));
  if (f.until) where.push(lte(auditLog.at, new Date(f.until).toISOString()));
  if (f.cursor) where.push(lt(auditLog.id, f.cursor));
  const limit = f.limit ?? 50;
  const rows = await ctx.db
    .select()
    .from(auditLog)
    .where(where.length ? and(...where) : undefined)
    .orderBy(desc(auditLog.id))
    .limit(limit + 1);
  const more = rows.length > limit;
  const items = more ? rows.slice(0, limit) : rows;
  return { items, nextCursor: more ? items[items.length - 1].id : null };
}
