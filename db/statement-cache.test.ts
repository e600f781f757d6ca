import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@libsql/client";
import Database from "libsql";
import { afterAll, describe, expect, it } from "vitest";
import { cacheStatements, STATEMENTS_PER_CONNECTION } from "./statement-cache";

const dir = mkdtempSync(join(tmpdir(), "dcc-stmt-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("prepared statement cache (a real libSQL file)", () => {
  cacheStatements();
  const client = createClient({ url: `file:${join(dir, "t.db")}` });

  it("reuses one compiled statement per text, with each run's own arguments and results", async () => {
    await client.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL)");
    for (let i = 0; i < 50; i++) await client.execute({ sql: "INSERT INTO t (id, name) VALUES (?, ?) RETURNING id, name", args: [i, `n${i}`] });
    for (const i of [3, 17, 49]) {
      const r = await client.execute({ sql: "SELECT id, name FROM t WHERE id = ?", args: [i] });
      expect(r.rows.map((x) => ({ ...x }))).toEqual([{ id: i, name: `n${i}` }]);
    }
    const none = await client.execute({ sql: "SELECT id, name FROM t WHERE id = ?", args: [1000] });
    expect(none.rows).toEqual([]);
    expect(none.columns).toEqual(["id", "name"]);
  });

  it("keeps working across transactions, a rollback and a schema change", async () => {
    const tx = await client.transaction("write");
    await tx.execute({ sql: "INSERT INTO t (id, name) VALUES (?, ?) RETURNING id, name", args: [100, "rolled back"] });
    await tx.rollback();
    expect((await client.execute({ sql: "SELECT id, name FROM t WHERE id = ?", args: [100] })).rows).toEqual([]);
    await client.execute("ALTER TABLE t ADD COLUMN extra TEXT");
    const r = await client.execute({ sql: "SELECT id, name FROM t WHERE id = ?", args: [3] });
    expect(r.rows.map((x) => ({ ...x }))).toEqual([{ id: 3, name: "n3" }]);
  });

  it("holds at most STATEMENTS_PER_CONNECTION statements per connection, dropping the least recently used", () => {
    const db = new Database(join(dir, "t.db"));
    const first = db.prepare("SELECT 0");
    expect(db.prepare("SELECT 0")).toBe(first);
    for (let i = 1; i <= STATEMENTS_PER_CONNECTION; i++) db.prepare(`SELECT ${i}`);
    expect(db.prepare("SELECT 0")).not.toBe(first);
    expect(db.prepare(`SELECT ${STATEMENTS_PER_CONNECTION}`)).toBe(db.prepare(`SELECT ${STATEMENTS_PER_CONNECTION}`));
    db.close();
  });
});
