import { sql } from "drizzle-orm";
import { check, index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

export const NOTIFICATION_KINDS = ["json", "slack"] as const;
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number];
export const NOTIFICATION_EVENTS = ["app.stopped", "deploy.failed", "host.offline", "vulnerability"] as const;
export type NotificationEvent = (typeof NOTIFICATION_EVENTS)[number];
export const DELIVERY_STATES = ["pending", "delivered", "failed", "skipped"] as const;
export type DeliveryState = (typeof DELIVERY_STATES)[number];

/**
 * Webhook targets. The URL (a Slack webhook URL is itself a credential) and the signing secret are
 * sealed with the console's secret key; only a shortened URL is kept readable, for lists.
 */
export const notificationTargets = sqliteTable(
  "notification_targets",
  {
    id: text("id").primaryKey(),
    kind: text("kind", { enum: NOTIFICATION_KINDS }).notNull(),
    /** Scheme, host and the first path segment: enough to tell targets apart. */
    urlDisplay: text("url_display").notNull(),
    urlSealed: text("url_sealed").notNull(),
    secretSealed: text("secret_sealed"),
    events: text("events", { mode: "json" }).$type<NotificationEvent[]>().notNull(),
    createdBy: text("created_by").notNull(),
    createdAt: text("created_at").notNull().default(sql`(strftime('%Y-%m-%dT%H:%M:%fZ','now'))`),
    /** The last delivery attempt: when, its outcome, the receiver's HTTP status and why it failed. */
    lastAttemptAt: text("last_attempt_at"),
    lastOutcome: text("last_outcome", { enum: ["delivered", "retrying", "failed"] }),
    lastHttpStatus: integer("last_http_status"),
    lastError: text("last_error"),
  },
  (t) => [
    check("notification_targets_kind_enum", sql`${t.kind} IN ('json', 'slack')`),
    check("notification_targets_last_outcome_enum", sql`${t.lastOutcome} IS NULL OR ${t.lastOutcome} IN ('delivered', 'retrying', 'failed')`),
  ],
);

/** The durable delivery queue: one row per event and target, retried with backoff until delivered or given up. */
export const notificationDeliveries = sqliteTable(
  "notification_deliveries",
  {
    id: text("id").primaryKey(),
    targetId: text("target_id").notNull(),
    event: text("event").notNull(),
    /** Same event, same target: delivered once (the unique index drops repeats). */
    dedupKey: text("dedup_key").notNull(),
    payload: text("payload", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
    state: text("state", { enum: DELIVERY_STATES }).notNull().default("pending"),
    attempts: integer("attempts").notNull().default(0),
    nextAttemptAt: text("next_attempt_at").notNull(),
    lastError: text("last_error"),
    createdAt: text("created_at").notNull(),
    deliveredAt: text("delivered_at"),
  },
  (t) => [
    check("notification_deliveries_state_enum", sql`${t.state} IN ('pending', 'delivered', 'failed', 'skipped')`),
    uniqueIndex("notification_deliveries_dedup").on(t.targetId, t.dedupKey),
    index("notification_deliveries_due").on(t.state, t.nextAttemptAt),
  ],
);

export type NotificationTarget = typeof notificationTargets.$inferSelect;
export type NotificationDelivery = typeof notificationDeliveries.$inferSelect;
