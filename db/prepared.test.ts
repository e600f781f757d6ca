// prepared(): statements built once run on whichever reader holds them — the database, a
// transaction, a savepoint — on a real libSQL file with the console's migrations and write gate.
// Also the trigger-kept app count per host and the query plans of the registration's reads.
import { eq, sql } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { placeholders, prepared } from "./prepared";
import { apps, auditLog, hosts } from "./schema";
import { appRow, CANDIDATE_READS, hostCandidates } from "../app/services/app-writes.server";
import { inGroupTransaction } from "../app/services/group-commit.server";
import { migratedDb } from "../tests/support/db";
import type { Db } from "./client";

const file = await migratedDb("dcc-prepared-");
const { db } = file;
afterAll(() => file.dispose());

const insertAudit = prepared((d: Pick<Db, "insert">) => d.insert(auditLog).values(placeholders(["actor", "action", "target", "outcome", "detail"])));
const auditByTarget = prepared((d: Pick<Db, "select">) => d.select().from(auditLog).where(eq(auditLog.target, sql.placeholder("target"))));
const entry = (target: string) => ({ actor: "system:test", action: "test.write", target, outcome: "ok", detail: { n: 1 } });

describe("prepared statements on a real libSQL file", () => {
  it("run on the database itself, JSON columns encoded and decoded", async () => {
    await insertAudit(db).run(entry("plain"));
    const [row] = await auditByTarget(db).all({ target: "plain" });
    expect(row).toMatchObject({ action: "test.write", target: "plain", detail: { n: 1 } });
  });

  it("store a null given for a JSON column as SQL NULL, as drizzle's built queries do (not the text null)", async () => {
    await insertAudit(db).run({ ...entry("no-detail"), detail: null });
    const r = await db.$client.execute("SELECT typeof(detail) AS t FROM audit_log WHERE target = 'no-detail'");
    expect(r.rows[0]?.t).toBe("null");
    expect((await auditByTarget(db).all({ target: "no-detail" }))[0]?.detail).toBeNull();
  });

  it("run inside the caller's transaction: a rollback takes their writes with it", async () => {
    await expect(
      db.transaction(async (tx) => {
        await insertAudit(tx).run(entry("rolled-back"));
        // Read back on the transaction's own connection before the rollback.
        expect(await auditByTarget(tx).all({ target: "rolled-back" })).toHaveLength(1);
        throw new Error("abort");
      }),
    ).rejects.toThrow("abort");
    expect(await auditByTarget(db).all({ target: "rolled-back" })).toEqual([]);
  });

  it("inside group-commit savepoints: a failing use case loses only its own writes", async () => {
    const results = await Promise.allSettled([
      inGroupTransaction(db, (tx) => insertAudit(tx).run(entry("group-a"))),
      inGroupTransaction(db, async (tx) => {
        await insertAudit(tx).run(entry("group-b"));
        throw new Error("b fails");
      }),
      inGroupTransaction(db, (tx) => insertAudit(tx).run(entry("group-c"))),
    ]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    for (const [target, n] of [["group-a", 1], ["group-b", 0], ["group-c", 1]] as const) expect(await auditByTarget(db).all({ target })).toHaveLength(n);
  });

  it("a statement used on the database while another transaction holds the writer waits its turn (no deadlock)", async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const tx = db.transaction(async (t) => {
      await insertAudit(t).run(entry("first"));
      await held;
    });
    const later = insertAudit(db).run(entry("second"));
    setTimeout(release, 50);
    await Promise.all([tx, later]);
    expect(await auditByTarget(db).all({ target: "second" })).toHaveLength(1);
  });
});

describe("hosts.app_count (kept by triggers on apps)", () => {
  const app = (name: string, hostId: string | null, port: number) => ({ id: `id-${name}`, name, repository: "https://example.com/r.git", startCommand: "run", port, hostId });
  const count = async (id: string) => (await db.select({ n: hosts.appCount }).from(hosts).where(eq(hosts.id, id)))[0]?.n;

  it("follows inserts, moves, removals and a host's deletion", async () => {
    await db.insert(hosts).values([
      { id: "h1", name: "one", online: true },
      { id: "h2", name: "two", online: true },
    ]);
    await db.insert(apps).values([app("a1", "h1", 2001), app("a2", "h1", 2002), app("a3", "h2", 2003), app("a4", null, 2004)]);
    expect([await count("h1"), await count("h2")]).toEqual([2, 1]);
    await db.update(apps).set({ hostId: "h2" }).where(eq(apps.name, "a1"));
    await db.update(apps).set({ hostId: "h1" }).where(eq(apps.name, "a4"));
    await db.update(apps).set({ port: 2104 }).where(eq(apps.name, "a4")); // not a move
    expect([await count("h1"), await count("h2")]).toEqual([2, 2]);
    await db.delete(apps).where(eq(apps.name, "a2"));
    expect([await count("h1"), await count("h2")]).toEqual([1, 2]);
    // Placement reads it as each candidate's app count.
    const candidates = await hostCandidates(db, undefined, 2003);
    expect(candidates.map((c) => [c.id, c.appCount, c.usedPorts])).toEqual(expect.arrayContaining([["h1", 1, []], ["h2", 2, [2003]]]));
    // Deleting a host sets its apps' host to NULL (the foreign key): the other host is untouched.
    await db.delete(hosts).where(eq(hosts.id, "h1"));
    expect(await count("h2")).toBe(2);
    expect((await appRow(db, "a4"))?.hostId).toBeNull();
  });
});

describe("query plans of a registration's reads (indexed lookups, never a scan of every app)", () => {
  const plan = async (q: { getQuery(): { sql: string; params: unknown[] } }) => {
    const { sql: text, params } = q.getQuery();
    const r = await db.$client.execute({ sql: `EXPLAIN QUERY PLAN ${text}`, args: params.map(() => null) });
    return r.rows.map((row) => String(row.detail)).join(" | ");
  };

  it("the candidate hosts' port and GPU reads search the (host, …) indexes", async () => {
    for (const reads of [CANDIDATE_READS.named, CANDIDATE_READS.online]) {
      const ports = await plan(reads.ports(db));
      const held = await plan(reads.held(db));
      expect(ports).toContain("SEARCH apps USING COVERING INDEX apps_host_port");
      expect(held).toContain("SEARCH gpu_assignments USING COVERING INDEX gpu_assignments_host_device");
      expect(`${ports} ${held}`).not.toMatch(/SCAN (apps|gpu_assignments)\b/);
    }
  });
});
