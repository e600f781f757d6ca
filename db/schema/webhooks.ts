import { sql } from "drizzle-orm";
import { check, index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { apps } from "./apps";

export const FORGES = ["github", "gitlab", "gitea"] as const;
export type Forge = (typeof FORGES)[number];

/**
 * An app's deploy webhook. The secret is needed in clear to verify HMAC signatures, so it is kept
 * encrypted with the console's secret key (AES-256-GCM, bound to the app id), never in plaintext.
 */
export const appWebhooks = sqliteTable("app_webhooks", {
  appId: text("app_id")
    .primaryKey()
    .references(() => apps.id, { onDelete: "cascade" }),
  secretSealed: text("secret_sealed").notNull(),
  createdBy: text("created_by").notNull(),
  createdAt: text("created_at").notNull().default(sql`(strftime('%Y-%m-%dT%H:%M:%fZ','now'))`),
  rotatedAt: text("rotated_at"),
  lastDeliveryAt: text("last_delivery_at"),
});

/** Deliveries whose signature checked out, by the forge's delivery id: a replay is ignored. */
export const webhookDeliveries = sqliteTable(
  "webhook_deliveries",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    appId: text("app_id")
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    forge: text("forge", { enum: FORGES }).notNull(),
    deliveryId: text("delivery_id").notNull(),
    receivedAt: text("received_at").notNull().default(sql`(strftime('%Y-%m-%dT%H:%M:%fZ','now'))`),
  },
  (t) => [
    check("webhook_deliveries_forge_enum", sql`${t.forge} IN ('github', 'gitlab', 'gitea')`),
    uniqueIndex("webhook_deliveries_once").on(t.appId, t.forge, t.deliveryId),
    index("webhook_deliveries_received").on(t.receivedAt),
  ],
);

export type AppWebhook = typeof appWebhooks.$inferSelect;
