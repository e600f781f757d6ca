import { sql } from "drizzle-orm";
import { check, index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import type { DependencyPackage } from "../../agent/src/contract/dependencies";

export const SCAN_STATES = ["pending", "done", "failed"] as const;
export type ScanState = (typeof SCAN_STATES)[number];

/**
 * The dependency inventory of each app at its deployed commit, as its agent reported it, and the
 * state of its OSV check (a durable queue: due rows are picked up by any console process).
 */
export const appDependencies = sqliteTable(
  "app_dependencies",
  {
    appId: text("app_id").primaryKey(),
    appName: text("app_name").notNull(),
    commitSha: text("commit_sha").notNull(),
    packages: text("packages", { mode: "json" }).$type<DependencyPackage[]>().notNull(),
    manifests: text("manifests", { mode: "json" }).$type<string[]>().notNull(),
    truncated: integer("truncated", { mode: "boolean" }).notNull().default(false),
    reportedAt: text("reported_at").notNull(),
    scanState: text("scan_state", { enum: SCAN_STATES }).notNull().default("pending"),
    scanAttempts: integer("scan_attempts").notNull().default(0),
    /** When a pending or failed check is next due (also a claim lease while one runs). */
    nextScanAt: text("next_scan_at"),
    scannedAt: text("scanned_at"),
    scanError: text("scan_error"),
  },
  (t) => [
    check("app_dependencies_scan_state_enum", sql`${t.scanState} IN ('pending', 'done', 'failed')`),
    index("app_dependencies_due").on(t.scanState, t.nextScanAt),
  ],
);

export type AppDependencies = typeof appDependencies.$inferSelect;
