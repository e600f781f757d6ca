import { sql } from "drizzle-orm";
import { index, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { apps } from "./apps";

/**
 * Share links of an app behind the gateway: a person without an account opens the app through
 * the console's /gateway/share/<token> until the link expires or is revoked. Only the SHA-256 of
 * the token is stored.
 */
export const gatewayShares = sqliteTable(
  "gateway_shares",
  {
    id: text("id").primaryKey(),
    appId: text("app_id")
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    tokenHash: text("token_hash").notNull().unique(),
    label: text("label"),
    createdBy: text("created_by").notNull(),
    createdAt: text("created_at").notNull().default(sql`(strftime('%Y-%m-%dT%H:%M:%fZ','now'))`),
    expiresAt: text("expires_at").notNull(),
    revokedAt: text("revoked_at"),
  },
  (t) => [index("gateway_shares_app").on(t.appId)],
);

export type GatewayShare = typeof gatewayShares.$inferSelect;
