import { sql } from "drizzle-orm";
import { check, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { ROLES } from "../roles";
import { oneOf } from "./check";

/** API tokens for CI/CD and scripts (`Authorization: Bearer dcc_…`). Only the SHA-256 of a token is stored. */
export const apiTokens = sqliteTable(
  "api_tokens",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull(),
    tokenHash: text("token_hash").notNull().unique(),
    /** The first characters of the token, shown in lists so people can tell tokens apart. */
    prefix: text("prefix").notNull(),
    role: text("role", { enum: ROLES }).notNull(),
    createdBy: text("created_by").notNull(),
    createdAt: text("created_at").notNull().default(sql`(strftime('%Y-%m-%dT%H:%M:%fZ','now'))`),
    expiresAt: text("expires_at"),
    revokedAt: text("revoked_at"),
    lastUsedAt: text("last_used_at"),
  },
  (t) => [check("api_tokens_role_enum", oneOf(t.role, ROLES))],
);

export type ApiToken = typeof apiTokens.$inferSelect;
