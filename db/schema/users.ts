import { sql } from "drizzle-orm";
import { check, index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

import { ROLES } from "../roles";
import { oneOf } from "./check";

export { ROLES, type Role } from "../roles";

/** People who sign in to the console. Passwords are argon2id hashes (PHC strings). */
export const users = sqliteTable(
  "users",
  {
    id: text("id").primaryKey(),
    username: text("username").notNull().unique(),
    passwordHash: text("password_hash").notNull(),
    role: text("role", { enum: ROLES }).notNull(),
    disabledAt: text("disabled_at"),
    lastSignInAt: text("last_sign_in_at"),
    createdAt: text("created_at").notNull().default(sql`(strftime('%Y-%m-%dT%H:%M:%fZ','now'))`),
    updatedAt: text("updated_at").notNull().default(sql`(strftime('%Y-%m-%dT%H:%M:%fZ','now'))`),
  },
  (t) => [check("users_role_enum", oneOf(t.role, ROLES))],
);

/** Signed-in browser sessions. `id` is the SHA-256 of the cookie value; the value itself is never stored. */
export const sessions = sqliteTable(
  "sessions",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    createdAt: text("created_at").notNull(),
    lastSeenAt: text("last_seen_at").notNull(),
    expiresAt: text("expires_at").notNull(),
    address: text("address"),
    userAgent: text("user_agent"),
  },
  (t) => [index("sessions_user").on(t.userId)],
);

/** Failed sign-in counters per account (`user:<name>`) and per address (`addr:<ip>`); kept in the database so a restart does not reset them. */
export const signInThrottle = sqliteTable("sign_in_throttle", {
  key: text("key").primaryKey(),
  failures: integer("failures").notNull().default(0),
  windowStartedAt: text("window_started_at").notNull(),
  lockedUntil: text("locked_until"),
});

/** One-time first-run set-up tokens (SHA-256 only); valid while no user exists. */
export const setupTokens = sqliteTable("setup_tokens", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  tokenHash: text("token_hash").notNull().unique(),
  createdAt: text("created_at").notNull(),
  expiresAt: text("expires_at").notNull(),
  usedAt: text("used_at"),
});

export type User = typeof users.$inferSelect;
export type Session = typeof sessions.$inferSelect;
