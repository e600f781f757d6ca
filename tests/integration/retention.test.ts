// Retention in a running console: old rows go in batches on the console's timer, install output
// first, the audit log last and archived before it goes; nothing live is pruned (unfinished
// commands, sessions not yet expired, recent rows), and the audit log stays append-only for
// everything newer than the retention mark.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startConsole, type RunningConsole } from "../support/console";
import { waitFor } from "./agents";

let c: RunningConsole;
const DAY = 86_400_000;
const ago = (days: number) => new Date(Date.now() - days * DAY).toISOString();
const count = async (sql: string, args: (string | number)[] = []) => Number((await c.db().execute({ sql, args })).rows[0].n);

beforeAll(async () => {
  c = await startConsole({
    env: { DCC_PRUNE_INTERVAL_S: "1", DCC_RETAIN_OUTPUT_DAYS: "2", DCC_RETAIN_EVENTS_DAYS: "10", DCC_RETAIN_COMMANDS_DAYS: "10", DCC_RETAIN_AUDIT_DAYS: "30" },
  });
  // One write transaction, retried while the console's own pruning holds the lock.
  const stmts: { sql: string; args: (string | number | null)[] }[] = [];
  const ev = (type: string, data: object, at: string) =>
    stmts.push({ sql: "INSERT INTO app_events (app_id, app_name, type, data, created_at) VALUES (NULL, 'old-app', ?, ?, ?)", args: [type, JSON.stringify(data), at] });
  ev("progress", { step: "install", output: ["Collecting torch", "Downloading 2.1 GB"] }, ago(3)); // output past 2 days: goes
  ev("progress", { step: "install", message: "running the install command" }, ago(3)); // no output: kept until 10 days
  ev("status", { status: "RUNNING" }, ago(11)); // goes
  ev("status", { status: "STOPPED" }, ago(1)); // kept
  for (let i = 0; i < 1200; i++) ev("status", { n: i }, ago(12)); // more than one batch
  const cmd = (id: string, state: string, finished: string | null) =>
    stmts.push({
      sql: "INSERT INTO commands (id, host_id, app_id, app_name, action, params, state, issued_at, expires_at, finished_at) VALUES (?, 'h', NULL, 'old-app', 'start', '{}', ?, ?, ?, ?)",
      args: [id, state, ago(20), ago(19), finished],
    });
  cmd("done-old", "done", ago(15)); // goes
  cmd("failed-recent", "failed", ago(2)); // kept
  cmd("pending-old", "pending", null); // unfinished: never pruned
  cmd("delivered-old", "delivered", null);
  stmts.push({ sql: "INSERT INTO audit_log (at, actor, action, target, outcome) VALUES (?, 'user:old', 'app.create', 'ancient', 'ok')", args: [ago(40)] });
  stmts.push({ sql: "INSERT INTO audit_log (at, actor, action, target, outcome) VALUES (?, 'user:old', 'app.create', 'recent', 'ok')", args: [ago(20)] });
  const user = (await c.db().execute("SELECT id FROM users LIMIT 1")).rows[0].id as string;
  const session = (id: string, expires: string) =>
    stmts.push({ sql: "INSERT INTO sessions (id, user_id, created_at, last_seen_at, expires_at) VALUES (?, ?, ?, ?, ?)", args: [id, user, ago(9), ago(9), expires] });
  session("expired-long-ago", ago(3));
  session("still-valid", new Date(Date.now() + DAY).toISOString());
  await waitFor("seed rows written", () => c.db().batch(stmts, "write").then(() => true), 20_000, 100);
});
afterAll(async () => {
  await c?.dispose();
});

describe("retention", () => {
  it("prunes old rows on the console's timer and keeps everything live or recent", async () => {
    await waitFor("old events pruned", async () => (await count("SELECT count(*) AS n FROM app_events WHERE app_name = 'old-app' AND created_at < ?", [ago(10)])) === 0, 30_000, 250);
    expect(await count("SELECT count(*) AS n FROM app_events WHERE app_name = 'old-app' AND json_extract(data, '$.output') IS NOT NULL")).toBe(0);
    expect(await count("SELECT count(*) AS n FROM app_events WHERE app_name = 'old-app' AND json_extract(data, '$.message') = 'running the install command'")).toBe(1);
    expect(await count("SELECT count(*) AS n FROM app_events WHERE app_name = 'old-app' AND json_extract(data, '$.status') = 'STOPPED'")).toBe(1);
    await waitFor("old commands pruned", async () => (await count("SELECT count(*) AS n FROM commands WHERE id = 'done-old'")) === 0, 10_000, 250);
    const kept = (await c.db().execute("SELECT id FROM commands WHERE app_name = 'old-app' ORDER BY id")).rows.map((r) => r.id);
    expect(kept).toEqual(["delivered-old", "failed-recent", "pending-old"]);
    await waitFor("expired session pruned", async () => (await count("SELECT count(*) AS n FROM sessions WHERE id = 'expired-long-ago'")) === 0, 10_000, 250);
    expect(await count("SELECT count(*) AS n FROM sessions WHERE id = 'still-valid'")).toBe(1);
  });

  it("archives old audit rows before pruning them, records the pruning, and stays append-only for the rest", async () => {
    await waitFor("old audit pruned", async () => (await count("SELECT count(*) AS n FROM audit_log WHERE target = 'ancient'")) === 0, 30_000, 250);
    expect(await count("SELECT count(*) AS n FROM audit_log WHERE target = 'recent'")).toBe(1);
    const mark = (await c.db().execute("SELECT cutoff, archive FROM audit_prune_marks ORDER BY id DESC LIMIT 1")).rows[0];
    expect(String(mark.archive)).toBe(join(c.dataDir, "audit-archive", `audit-${String(mark.cutoff).slice(0, 10)}.jsonl`));
    const archived = (await readFile(String(mark.archive), "utf8")).trim().split("\n").map((l) => JSON.parse(l));
    expect(archived.some((r) => r.target === "ancient" && r.actor === "user:old")).toBe(true);
    expect(archived.some((r) => r.target === "recent")).toBe(false);
    expect(await count("SELECT count(*) AS n FROM audit_log WHERE action = 'audit.prune'")).toBeGreaterThanOrEqual(1);
    // Newer rows (and the marks themselves) still refuse UPDATE and DELETE.
    await expect(c.db().execute("DELETE FROM audit_log WHERE target = 'recent'")).rejects.toThrow(/append-only/);
    await expect(c.db().execute("UPDATE audit_log SET outcome = 'denied' WHERE target = 'recent'")).rejects.toThrow(/append-only/);
    await expect(c.db().execute("DELETE FROM audit_prune_marks")).rejects.toThrow(/append-only/);
  });
});
