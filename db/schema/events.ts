import { sql } from "drizzle-orm";
import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

/** What happened to an app, in order. The id doubles as the live stream's last-event id. */
export const appEvents = sqliteTable(
  "app_events",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    appId: text("app_id"),
    appName: text("app_name").notNull(),
    type: text("type").notNull(),
    data: text("data", { mode: "json" }).$type<Record<string, unknown>>().notNull().default(sql`'{}'`),
    createdAt: text("created_at").notNull().default(sql`(strftime('%Y-%m-%dT%H:%M:%fZ','now'))`),
  },
  (t) => [
    index("app_events_app").on(t.appName, t.id),
    // Retention prunes by age.
    index("app_events_created").on(t.createdAt),
  ],
);

export type AppEvent = typeof appEvents.$inferSelect;
