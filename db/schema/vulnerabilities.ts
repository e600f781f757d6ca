import { sql } from "drizzle-orm";
import { check, index, integer, real, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

export const SEVERITIES = ["unknown", "low", "medium", "high", "critical"] as const;
export type Severity = (typeof SEVERITIES)[number];

/** Known vulnerabilities of an app's dependencies at its deployed commit (replaced by each check). */
export const appVulnerabilities = sqliteTable(
  "app_vulnerabilities",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    appId: text("app_id").notNull(),
    appName: text("app_name").notNull(),
    commitSha: text("commit_sha").notNull(),
    /** The OSV id (GHSA-…, PYSEC-…) and its aliases (CVE-…). */
    vulnId: text("vuln_id").notNull(),
    aliases: text("aliases", { mode: "json" }).$type<string[]>().notNull(),
    ecosystem: text("ecosystem").notNull(),
    package: text("package").notNull(),
    version: text("version").notNull(),
    severity: text("severity", { enum: SEVERITIES }).notNull(),
    /** CVSS base score when the advisory gives a vector. */
    score: real("score"),
    fixedIn: text("fixed_in"),
    summary: text("summary"),
    url: text("url").notNull(),
    firstSeenAt: text("first_seen_at").notNull(),
  },
  (t) => [
    check("app_vulnerabilities_severity_enum", sql`${t.severity} IN ('unknown', 'low', 'medium', 'high', 'critical')`),
    uniqueIndex("app_vulnerabilities_finding").on(t.appId, t.vulnId, t.ecosystem, t.package, t.version),
    index("app_vulnerabilities_app_name").on(t.appName),
  ],
);

export type AppVulnerability = typeof appVulnerabilities.$inferSelect;
