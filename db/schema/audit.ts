import { sql } from "drizzle-orm";
import { check, index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

/**
 * Append-only record of who did what to which target, from where, with what outcome. Triggers in
 * the `auth` migration make the database itself refuse UPDATE and DELETE of its rows.
 */
export const auditLog = sqliteTable(
  "audit_log",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    at: text("at").notNull().default(sql`(strftime('%Y-%m-%dT%H:%M:%fZ','now'))`),
    actor: text("actor").notNull(),
    action: text("action").notNull(),
    target: text("target"),
    sourceAddress: text("source_address"),
    outcome: text("outcome", { enum: ["ok", "denied", "error"] }).notNull(),
    detail: text("detail", { mode: "json" }).$type<Record<string, unknown>>(),
  },
  (t) => [
    check("audit_outcome_enum", sql`${t.outcome} IN ('ok', 'denied', 'error')`),
    index("audit_at").on(t.at),
    index("audit_actor").on(t.actor),
    index("audit_action").on(t.action),
  ],
);

export type AuditEntry = typeof auditLog.$inferSelect;

/**
 * Retention marks: the audit log is append-only (a trigger refuses UPDATE and DELETE) except for
 * rows older than the newest mark, which the retention job writes (after archiving those rows)
 * together with an audit entry saying so.
 */
export const auditPruneMarks = sqliteTable("audit_prune_marks", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  cutoff: text("cutoff").notNull(),
  archive: text("archive"),
  at: text("at").notNull().default(sql`(strftime('%Y-%m-%dT%H:%M:%fZ','now'))`),
});
