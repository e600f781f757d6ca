import { sql } from "drizzle-orm";
import { check, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

/** A pre-pull as the hosts page shows it: what the agent's `prepull` command last reported. */
export interface HostPull {
  commandId: string;
  image: string;
  state: "queued" | "pulling" | "done" | "failed";
  pct: number | null;
  bytes: { done: number; total: number } | null;
  layer: string | null;
  message: string | null;
  requestedBy: string;
  updatedAt: string;
}

/** A machine running an agent. `facts` is what the agent last reported (Docker, compose, GPUs). */
export const hosts = sqliteTable(
  "hosts",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull(),
    publicKey: text("public_key"),
    online: integer("online", { mode: "boolean" }).notNull().default(false),
    lastSeenAt: text("last_seen_at"),
    address: text("address"),
    facts: text("facts", { mode: "json" }).$type<Record<string, unknown>>().notNull().default(sql`'{}'`),
    /** Which console process holds the host's socket (several processes may share one database). */
    connectedTo: text("connected_to"),
    revokedAt: text("revoked_at"),
    /** Scheduled cleanup of orphans on this host (every DCC_AUTO_CLEANUP_HOURS). */
    autoCleanup: integer("auto_cleanup", { mode: "boolean" }).notNull().default(false),
    /** The newest pre-pull of an image on this host (hosts.prepull, or automatic at enrolment) and how far it got. */
    pull: text("pull", { mode: "json" }).$type<HostPull>(),
    /**
     * Apps placed on this host, kept by triggers on `apps` (insert, delete, a changed host), so that
     * placement balances hosts without counting their apps on every registration.
     */
    appCount: integer("app_count").notNull().default(0),
    createdAt: text("created_at").notNull().default(sql`(strftime('%Y-%m-%dT%H:%M:%fZ','now'))`),
  },
  (t) => [check("hosts_online_bool", sql`${t.online} IN (0, 1)`)],
);

/** One-time enrolment tokens (only their hash is stored). */
export const enrollments = sqliteTable("enrollments", {
  id: text("id").primaryKey(),
  tokenHash: text("token_hash").notNull().unique(),
  hostName: text("host_name"),
  expiresAt: text("expires_at").notNull(),
  usedAt: text("used_at"),
  hostId: text("host_id"),
  createdBy: text("created_by"),
  createdAt: text("created_at").notNull().default(sql`(strftime('%Y-%m-%dT%H:%M:%fZ','now'))`),
});

export type Host = typeof hosts.$inferSelect;
