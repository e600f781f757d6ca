// Dependency checks: the inventory an agent reports after a deploy at a new commit becomes a due
// row in app_dependencies (a durable queue, so a deploy never waits for OSV and a console restart
// loses nothing). A loop in every console process claims due rows, checks the pinned PyPI and npm
// packages against OSV (answers cached per package version until the next re-check), replaces the
// app's findings, and raises a notification for each new high or critical one. A failed check is
// retried with backoff; a finished one is re-checked after DCC_OSV_RECHECK_S (daily by default).
import { and, asc, eq, inArray, isNull, lte, or, sql } from "drizzle-orm";
import type { DependenciesMessage } from "../../agent/src/contract/dependencies";
import { appDependencies, apps, appVulnerabilities, osvAdvisories, osvQueries, type AppDependencies, type Severity } from "../../db/schema";
import type { ConsoleContext } from "../context.server";
import { getApp } from "./apps.server";
import { notifyEvent } from "./notify.server";
import { advisoryUrl, fixedVersionFor, osvQueryBatch, osvVuln, severityOf, type OsvQuery, type OsvRecord } from "./osv.server";
import type { Refusal } from "./reports.server";

type Ctx = Pick<ConsoleContext, "db" | "config">;

const CHECKED = new Set(["PyPI", "npm"]);
const LEASE_MS = 5 * 60_000;
const RETRY_BASE_MS = 5_000;
const RETRY_MAX_MS = 3_600_000;
const nowIso = () => new Date().toISOString();

/** Records an agent's inventory of its own app; a new commit or package list makes a check due. */
export async function recordDependencies(ctx: Pick<ConsoleContext, "db">, hostId: string, msg: DependenciesMessage): Promise<Refusal[]> {
  const [app] = await ctx.db.select({ id: apps.id, hostId: apps.hostId }).from(apps).where(eq(apps.name, msg.app));
  if (!app) return [{ app: msg.app, reason: `no app named ${msg.app}` }];
  if (app.hostId !== hostId) return [{ app: msg.app, reason: `app ${msg.app} does not belong to the reporting host` }];
  const [prev] = await ctx.db.select().from(appDependencies).where(eq(appDependencies.appId, app.id));
  if (prev && prev.commitSha === msg.commitSha && JSON.stringify(prev.packages) === JSON.stringify(msg.packages)) return [];
  const row = {
    appId: app.id,
    appName: msg.app,
    commitSha: msg.commitSha,
    packages: msg.packages,
    manifests: msg.manifests,
    truncated: msg.truncated ?? false,
    reportedAt: nowIso(),
    scanState: "pending" as const,
    scanAttempts: 0,
    nextScanAt: nowIso(),
    scanError: null,
  };
  await ctx.db.insert(appDependencies).values(row).onConflictDoUpdate({ target: appDependencies.appId, set: row });
  return [];
}

export interface VulnerabilityDto {
  id: string;
  aliases: string[];
  package: string;
  version: string;
  ecosystem: string;
  severity: Severity;
  score: number | null;
  fixedIn: string | null;
  summary: string | null;
  url: string;
  commitSha: string;
  firstSeenAt: string;
}

const RANK: Record<Severity, number> = { critical: 4, high: 3, medium: 2, low: 1, unknown: 0 };

export async function listVulnerabilities(ctx: Pick<ConsoleContext, "db">, appName: string): Promise<VulnerabilityDto[]> {
  // Joined with the live app row: findings of a deinstalled app (cleared on its next due check) never show under a new app of the same name.
  const rows = (await ctx.db.select().from(appVulnerabilities).innerJoin(apps, eq(apps.id, appVulnerabilities.appId)).where(eq(apps.name, appName))).map((r) => r.app_vulnerabilities);
  return rows
    .map((r) => ({ id: r.vulnId, aliases: r.aliases, package: r.package, version: r.version, ecosystem: r.ecosystem, severity: r.severity, score: r.score, fixedIn: r.fixedIn, summary: r.summary, url: r.url, commitSha: r.commitSha, firstSeenAt: r.firstSeenAt }))
    .sort((a, b) => RANK[b.severity] - RANK[a.severity] || (b.score ?? 0) - (a.score ?? 0) || a.package.localeCompare(b.package));
}

/** `apps.vulnerabilities`: the app's findings (most severe first) and the state of its check. */
export async function appVulnerabilityReport(ctx: Pick<ConsoleContext, "db">, name: string) {
  await getApp(ctx, name);
  return { items: await listVulnerabilities(ctx, name), scan: await scanStatus(ctx, name) };
}

/** The state of an app's check, for the app page (null before its agent reported an inventory). */
export async function scanStatus(ctx: Pick<ConsoleContext, "db">, appName: string) {
  const [r] = await ctx.db
    .select({ commitSha: appDependencies.commitSha, packages: appDependencies.packages, manifests: appDependencies.manifests, state: appDependencies.scanState, scannedAt: appDependencies.scannedAt, error: appDependencies.scanError })
    .from(appDependencies)
    .innerJoin(apps, eq(apps.id, appDependencies.appId))
    .where(eq(apps.name, appName));
  if (!r) return null;
  return { commitSha: r.commitSha, packages: r.packages.length, pinned: r.packages.filter((p) => p.version).length, manifests: r.manifests, state: r.state, scannedAt: r.scannedAt, error: r.error };
}

/** Highest severity and count per app, for the dashboard badge. */
export async function vulnerabilitySummary(ctx: Pick<ConsoleContext, "db">): Promise<Map<string, { severity: Severity; count: number }>> {
  const rows = await ctx.db
    .select({ app: apps.name, severity: appVulnerabilities.severity, n: sql<number>`count(*)` })
    .from(appVulnerabilities)
    .innerJoin(apps, eq(apps.id, appVulnerabilities.appId))
    .groupBy(apps.name, appVulnerabilities.severity);
  const out = new Map<string, { severity: Severity; count: number }>();
  for (const r of rows) {
    const cur = out.get(r.app) ?? { severity: "unknown" as Severity, count: 0 };
    out.set(r.app, { severity: RANK[r.severity] > RANK[cur.severity] ? r.severity : cur.severity, count: cur.count + Number(r.n) });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The check

/** OSV ids per query, from the cache where fresh, else one batched call for the rest. */
async function lookupIds(ctx: Ctx, base: string, queries: OsvQuery[]): Promise<{ id: string; modified?: string }[][]> {
  const fresh = new Date(Date.now() - ctx.config.alerts.recheckMs).toISOString();
  const cached = new Map<string, { id: string; modified?: string }[]>();
  const k = (q: OsvQuery) => `${q.ecosystem}\u0000${q.name}\u0000${q.version}`;
  for (let i = 0; i < queries.length; i += 200) {
    const slice = queries.slice(i, i + 200);
    const rows = await ctx.db
      .select()
      .from(osvQueries)
      .where(and(sql`${osvQueries.checkedAt} > ${fresh}`, or(...slice.map((q) => and(eq(osvQueries.ecosystem, q.ecosystem), eq(osvQueries.name, q.name), eq(osvQueries.version, q.version))))));
    for (const r of rows) cached.set(k(r), r.vulns);
  }
  const missing = queries.filter((q) => !cached.has(k(q)));
  if (missing.length) {
    const answers = await osvQueryBatch(base, missing);
    const at = nowIso();
    const rows = missing.map((q, i) => ({ ...q, vulns: answers[i]!, checkedAt: at }));
    for (let i = 0; i < rows.length; i += 200) {
      await ctx.db.insert(osvQueries).values(rows.slice(i, i + 200)).onConflictDoUpdate({ target: [osvQueries.ecosystem, osvQueries.name, osvQueries.version], set: { vulns: sql`excluded.vulns`, checkedAt: sql`excluded.checked_at` } });
    }
    missing.forEach((q, i) => cached.set(k(q), answers[i]!));
  }
  return queries.map((q) => cached.get(k(q)) ?? []);
}

/** Advisory records by id, fetched again only when OSV says one was modified. */
async function advisories(ctx: Ctx, base: string, refs: { id: string; modified?: string }[]): Promise<Map<string, OsvRecord>> {
  const ids = [...new Set(refs.map((r) => r.id))];
  const out = new Map<string, OsvRecord>();
  const stored = ids.length ? await ctx.db.select().from(osvAdvisories).where(inArray(osvAdvisories.id, ids)) : [];
  const modified = new Map(refs.map((r) => [r.id, r.modified]));
  for (const s of stored) if (!modified.get(s.id) || s.modified === modified.get(s.id)) out.set(s.id, s.record as unknown as OsvRecord);
  for (const id of ids.filter((i) => !out.has(i))) {
    const rec = await osvVuln(base, id);
    const { details: _d, references: _r, ...kept } = rec as OsvRecord & { references?: unknown };
    await ctx.db
      .insert(osvAdvisories)
      .values({ id, modified: rec.modified ?? null, record: kept as Record<string, unknown>, fetchedAt: nowIso() })
      .onConflictDoUpdate({ target: osvAdvisories.id, set: { modified: rec.modified ?? null, record: kept as Record<string, unknown>, fetchedAt: nowIso() } });
    out.set(id, kept);
  }
  return out;
}

/** Checks one app's inventory and replaces its findings; answers the new high/critical ones. */
export async function checkApp(ctx: Ctx, row: AppDependencies): Promise<{ findings: number; alerted: number }> {
  const base = ctx.config.alerts.osvUrl!;
  const pinned = row.packages.filter((p): p is typeof p & { version: string } => !!p.version && CHECKED.has(p.ecosystem));
  const queries = pinned.map((p) => ({ ecosystem: p.ecosystem, name: p.name, version: p.version }));
  const ids = await lookupIds(ctx, base, queries);
  const records = await advisories(ctx, base, ids.flat());
  const at = nowIso();
  const findings: (typeof appVulnerabilities.$inferInsert)[] = [];
  queries.forEach((q, i) => {
    const seen = new Set<string>();
    // GHSA first: OSV lists one flaw under several ids (GHSA, PYSEC, CVE); one finding per flaw.
    const recs = ids[i]!.map((v) => records.get(v.id)).filter((r): r is OsvRecord => !!r).sort((a, b) => Number(b.id.startsWith("GHSA-")) - Number(a.id.startsWith("GHSA-")));
    for (const rec of recs) {
      if (seen.has(rec.id)) continue;
      for (const id of [rec.id, ...(rec.aliases ?? [])]) seen.add(id);
      const { severity, score } = severityOf(rec, q);
      findings.push({
        appId: row.appId,
        appName: row.appName,
        commitSha: row.commitSha,
        vulnId: rec.id,
        aliases: (rec.aliases ?? []).slice(0, 20),
        ecosystem: q.ecosystem,
        package: q.name,
        version: q.version,
        severity,
        score,
        fixedIn: fixedVersionFor(rec, q),
        summary: (rec.summary ?? rec.details ?? "").slice(0, 300) || null,
        url: advisoryUrl(rec.id),
        firstSeenAt: at,
      });
    }
  });
  const fkey = (f: { vulnId: string; ecosystem: string; package: string; version: string }) => `${f.vulnId}\u0000${f.ecosystem}\u0000${f.package}\u0000${f.version}`;
  const fresh: typeof findings = [];
  await ctx.db.transaction(async (tx) => {
    const old = await tx.select().from(appVulnerabilities).where(eq(appVulnerabilities.appId, row.appId));
    const oldBy = new Map(old.map((o) => [fkey(o), o]));
    await tx.delete(appVulnerabilities).where(eq(appVulnerabilities.appId, row.appId));
    for (const f of findings) {
      const before = oldBy.get(fkey(f));
      if (before) f.firstSeenAt = before.firstSeenAt;
      else fresh.push(f);
    }
    for (let i = 0; i < findings.length; i += 100) await tx.insert(appVulnerabilities).values(findings.slice(i, i + 100)).onConflictDoNothing();
    await tx
      .update(appDependencies)
      .set({ scanState: "done", scanAttempts: 0, scannedAt: nowIso(), nextScanAt: null, scanError: null })
      .where(and(eq(appDependencies.appId, row.appId), eq(appDependencies.commitSha, row.commitSha)));
  });
  let alerted = 0;
  for (const f of fresh.filter((x) => x.severity === "high" || x.severity === "critical")) {
    alerted += await notifyEvent(ctx, {
      kind: "vulnerability",
      app: row.appName,
      key: `vulnerability:${row.appName}:${f.vulnId}:${f.ecosystem}:${f.package}@${f.version}`,
      detail: { id: f.vulnId, aliases: f.aliases, package: f.package, version: f.version, ecosystem: f.ecosystem, severity: f.severity, score: f.score, fixedIn: f.fixedIn, url: f.url, commitSha: row.commitSha },
    });
  }
  return { findings: findings.length, alerted };
}

/** Claims the next due inventory (pending, failed and due, or checked longer ago than the re-check interval). */
async function claim(ctx: Ctx): Promise<AppDependencies | null> {
  const now = nowIso();
  const stale = new Date(Date.now() - ctx.config.alerts.recheckMs).toISOString();
  const [due] = await ctx.db
    .select()
    .from(appDependencies)
    .where(or(and(inArray(appDependencies.scanState, ["pending", "failed"]), lte(appDependencies.nextScanAt, now)), and(eq(appDependencies.scanState, "done"), or(isNull(appDependencies.nextScanAt), lte(appDependencies.nextScanAt, now)), lte(appDependencies.scannedAt, stale))))
    .orderBy(asc(appDependencies.nextScanAt))
    .limit(1);
  if (!due) return null;
  const [mine] = await ctx.db
    .update(appDependencies)
    .set({ nextScanAt: new Date(Date.now() + LEASE_MS).toISOString() })
    .where(and(eq(appDependencies.appId, due.appId), due.nextScanAt === null ? isNull(appDependencies.nextScanAt) : eq(appDependencies.nextScanAt, due.nextScanAt)))
    .returning();
  return mine ?? null;
}

export function startScanner(ctx: Ctx, log: (level: string, msg: string, extra?: Record<string, unknown>) => void, tickMs = 1000): () => void {
  if (!ctx.config.alerts.osvUrl) return () => {};
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    (async () => {
      for (let n = 0; n < 20; n++) {
        const row = await claim(ctx);
        if (!row) return;
        const [app] = await ctx.db.select({ id: apps.id }).from(apps).where(eq(apps.id, row.appId));
        if (!app) {
          // The app was deinstalled: its inventory and findings go with it.
          await ctx.db.delete(appVulnerabilities).where(eq(appVulnerabilities.appId, row.appId));
          await ctx.db.delete(appDependencies).where(eq(appDependencies.appId, row.appId));
          continue;
        }
        try {
          const r = await checkApp(ctx, row);
          log("info", "dependency check done", { app: row.appName, commitSha: row.commitSha, packages: row.packages.length, ...r });
        } catch (e) {
          const attempts = row.scanAttempts + 1;
          const wait = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (attempts - 1));
          await ctx.db
            .update(appDependencies)
            // A failed re-check keeps the last findings (state done) and is due again after the wait.
            .set({ scanState: row.scanState === "done" ? "done" : "failed", scanAttempts: attempts, scanError: (e as Error).message.slice(0, 500), nextScanAt: new Date(Date.now() + wait).toISOString() })
            .where(eq(appDependencies.appId, row.appId));
          log("warn", "dependency check failed; retrying", { app: row.appName, attempt: attempts, inMs: wait, error: (e as Error).message });
        }
      }
    })()
      .catch((e) => log("error", "dependency checks failed", { error: (e as Error).message }))
      .finally(() => (busy = false));
  }, tickMs);
  timer.unref();
  return () => clearInterval(timer);
}
