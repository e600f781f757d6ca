// -- git refs, history and rollback ------------------------------------------------------------
import { sql } from "drizzle-orm";
import { check, index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { apps } from "./apps";

export const DEPLOY_ACTIONS = ["provision", "reinstall", "update", "rollback"] as const;
export const DEPLOY_OUTCOMES = ["ok", "failed"] as const;
/** Deploys kept per app (the oldest go first). */
export const DEPLOYS_KEPT_PER_APP = 50;

/**
 * An app's deploy history: one row per provision / reinstall / update / rollback result, with the
 * commit it left the app at. apps.rollback picks its target from the successful rows.
 */
export const deploys = sqliteTable(
  "deploys",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    appId: text("app_id").notNull().references(() => apps.id, { onDelete: "cascade" }),
    commandId: text("command_id").notNull(),
    action: text("action", { enum: DEPLOY_ACTIONS }).notNull(),
    /** The commit deployed (on failure: the one the app stayed at, when the agent said). */
    commitSha: text("commit_sha"),
    /** The branch or tag followed (for a pinned commit: the SHA), as the agent resolved it. */
    ref: text("ref"),
    refKind: text("ref_kind"),
    /** Who asked: `user:alice`, `token:…`, `system:console`. */
    actor: text("actor"),
    outcome: text("outcome", { enum: DEPLOY_OUTCOMES }).notNull(),
    error: text("error"),
    createdAt: text("created_at").notNull().default(sql`(strftime('%Y-%m-%dT%H:%M:%fZ','now'))`),
  },
  (t) => [
    check("deploys_action_enum", sql`${t.action} IN ('provision', 'reinstall', 'update', 'rollback')`),
    check("deploys_outcome_enum", sql`${t.outcome} IN ('ok', 'failed')`),
    index("deploys_app").on(t.appId, t.id),
  ],
);

export type Deploy = typeof deploys.$inferSelect;
// -- end git refs ------------------------------------------------------------------------------
