// Retention: tables that only grow are pruned by age, in small batches that never hold the write
// lock for long (each batch is one short DELETE; other writers take their turn between batches).
// Install output goes first (DCC_RETAIN_OUTPUT_DAYS), then other app events, finished commands,
// expired sessions and stale sign-in throttle rows; the audit log is kept longest
// (DCC_RETAIN_AUDIT_DAYS, 0 = for ever) and written to an archive file before any row goes.
// Nothing live is pruned: unfinished commands, sessions that have not expired, and every row newer
// than its window stay.
import { appendFile, mkdir, open } from "node:fs/promises";
import { join } from "node:path";
import type { Client } from "@libsql/client";
import { auditPruneMarks } from "../../db/schema";
import type { Config } from "../config.server";
import type { ConsoleContext } from "../context.server";
import { recordAudit } from "./audit.server";

export interface PruneReport {
  output: number;
  events: number;
  commands: number;
  sessions: number;
  throttle: number;
  audit: number;
  archive: string | null;
}

const BATCH = 500;
const DAY_MS = 86_400_000;
const SYSTEM = { kind: "system" as const, id: "retention", role: "admin" as const };
const pause = () => new Promise((r) => setTimeout(r, 5));

/** Deletes rows of `table` matching `where` in batches of BATCH; returns how many went. */
async function pruneBatches(client: Client, table: string, where: string, args: (string | number)[]): Promise<number> {
  let total = 0;
  for (;;) {
    const r = await client.execute({ sql: `DELETE FROM ${table} WHERE rowid IN (SELECT rowid FROM ${table} WHERE ${where} LIMIT ${BATCH})`, args });
    total += r.rowsAffected;
    if (r.rowsAffected < BATCH) return total;
    await pause();
  }
}

const iso = (ms: number) => new Date(ms).toISOString();

/** One pass over every table; `now` is injectable for tests. */
export async function pruneOnce(ctx: Pick<ConsoleContext, "db"> & { config: Pick<Config, "retention" | "dataDir"> }, now = Date.now()): Promise<PruneReport> {
  const client = ctx.db.$client;
  const r = ctx.config.retention;
  const report: PruneReport = { output: 0, events: 0, commands: 0, sessions: 0, throttle: 0, audit: 0, archive: null };
  if (r.outputMs > 0) {
    report.output = await pruneBatches(client, "app_events", "created_at < ? AND type = 'progress' AND json_extract(data, '$.output') IS NOT NULL", [iso(now - r.outputMs)]);
  }
  if (r.eventsMs > 0) report.events = await pruneBatches(client, "app_events", "created_at < ?", [iso(now - r.eventsMs)]);
  if (r.commandsMs > 0) {
    report.commands = await pruneBatches(client, "commands", "state IN ('done', 'failed') AND finished_at IS NOT NULL AND finished_at < ?", [iso(now - r.commandsMs)]);
  }
  // A session a day past its expiry, a throttle window untouched for a day and not locking now.
  report.sessions = await pruneBatches(client, "sessions", "expires_at < ?", [iso(now - DAY_MS)]);
  report.throttle = await pruneBatches(client, "sign_in_throttle", "window_started_at < ? AND (locked_until IS NULL OR locked_until < ?)", [iso(now - DAY_MS), iso(now)]);
  if (r.auditMs > 0) Object.assign(report, await pruneAudit(ctx, iso(now - r.auditMs)));
  return report;
}

/**
 * Audit rows older than `cutoff` are appended to `$DCC_DATA_DIR/audit-archive/audit-<cutoff day>.jsonl`
 * (mode 0600, flushed to disk) first; then a retention mark lets the database delete exactly those
 * (the append-only trigger refuses anything newer), and an audit entry records the pruning.
 */
async function pruneAudit(ctx: Pick<ConsoleContext, "db"> & { config: Pick<Config, "dataDir"> }, cutoff: string): Promise<{ audit: number; archive: string | null }> {
  const client = ctx.db.$client;
  const first = await client.execute({ sql: "SELECT count(*) AS n FROM audit_log WHERE at < ?", args: [cutoff] });
  if (Number(first.rows[0].n) === 0) return { audit: 0, archive: null };
  const dir = join(ctx.config.dataDir, "audit-archive");
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const archive = join(dir, `audit-${cutoff.slice(0, 10)}.jsonl`);
  let after = 0;
  for (;;) {
    const rows = await client.execute({ sql: "SELECT * FROM audit_log WHERE at < ? AND id > ? ORDER BY id LIMIT ?", args: [cutoff, after, BATCH] });
    if (!rows.rows.length) break;
    await appendFile(archive, rows.rows.map((row) => JSON.stringify(row)).join("\n") + "\n", { mode: 0o600 });
    after = Number(rows.rows[rows.rows.length - 1].id);
    if (rows.rows.length < BATCH) break;
  }
  const fh = await open(archive, "r");
  await fh.sync();
  await fh.close();
  await ctx.db.transaction(async (tx) => {
    await tx.insert(auditPruneMarks).values({ cutoff, archive });
    await recordAudit(tx, SYSTEM, { action: "audit.prune", detail: { before: cutoff, archive } });
  });
  const audit = await pruneBatches(client, "audit_log", "at < ?", [cutoff]);
  return { audit, archive };
}

/** Runs `pruneOnce` every `retention.intervalMs` (first run after one interval); returns a stop function. */
export function startRetention(ctx: Pick<ConsoleContext, "db"> & { config: Pick<Config, "retention" | "dataDir"> }, log: (msg: string, fields: Record<string, unknown>) => void): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    pruneOnce(ctx)
      .then((r) => {
        if (r.output + r.events + r.commands + r.sessions + r.throttle + r.audit > 0) log("pruned old rows", { ...r });
      })
      .catch((e) => log("pruning failed", { error: (e as Error).message }))
      .finally(() => (running = false));
  }, ctx.config.retention.intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
