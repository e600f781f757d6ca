import { primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

/** OSV's answer for one package version (ids and modified times), reused until the next re-check. */
export const osvQueries = sqliteTable(
  "osv_queries",
  {
    ecosystem: text("ecosystem").notNull(),
    name: text("name").notNull(),
    version: text("version").notNull(),
    vulns: text("vulns", { mode: "json" }).$type<{ id: string; modified?: string }[]>().notNull(),
    checkedAt: text("checked_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.ecosystem, t.name, t.version] })],
);

/** OSV advisories by id, fetched once per `modified` time. */
export const osvAdvisories = sqliteTable("osv_advisories", {
  id: text("id").primaryKey(),
  modified: text("modified"),
  record: text("record", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
  fetchedAt: text("fetched_at").notNull(),
});
