import { sql } from "drizzle-orm";
import { check, index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

export const COMMAND_STATES = ["pending", "delivered", "done", "failed"] as const;
export type CommandState = (typeof COMMAND_STATES)[number];

/** The outbox: the source of truth for every lifecycle command sent to an agent. */
export const commands = sqliteTable(
  "commands",
  {
    id: text("id").primaryKey(),
    hostId: text("host_id").notNull(),
    appId: text("app_id"),
    appName: text("app_name"),
    action: text("action").notNull(),
    params: text("params", { mode: "json" }).$type<Record<string, unknown>>().notNull().default(sql`'{}'`),
    state: text("state", { enum: COMMAND_STATES }).notNull().default("pending"),
    attempts: integer("attempts").notNull().default(0),
    issuedAt: text("issued_at").notNull(),
    expiresAt: text("expires_at").notNull(),
    deliveredAt: text("delivered_at"),
    /** Set when first sent (and re-sent unchanged): past it, an unanswered command fails naming its host. */
    deadlineAt: text("deadline_at"),
    finishedAt: text("finished_at"),
    result: text("result", { mode: "json" }).$type<Record<string, unknown>>(),
    error: text("error"),
    createdBy: text("created_by"),
  },
  (t) => [
    check("commands_state_enum", sql`${t.state} IN ('pending', 'delivered', 'done', 'failed')`),
    index("commands_host_state").on(t.hostId, t.state),
    // The hub's poll for commands written by other console processes reads only unfinished rows.
    index("commands_state_host").on(t.state, t.hostId),
    // A host's cleanup commands (hosts.orphans, the scheduled cleanup), newest first.
    index("commands_host_action").on(t.hostId, t.action),
    // Retention prunes finished commands by age.
    index("commands_finished").on(t.finishedAt),
  ],
);

export type Command = typeof commands.$inferSelect;
