import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@libsql/client";
import { afterEach, describe, expect, it } from "vitest";
import { gateWrites } from "./write-gate";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function open(gated: boolean) {
  const dir = mkdtempSync(join(tmpdir(), "dcc-gate-"));
  dirs.push(dir);
  const raw = createClient({ url: `file:${join(dir, "t.db")}`, timeout: 1000 });
  await raw.execute("PRAGMA journal_mode = WAL");
  await raw.execute("CREATE TABLE t (x INTEGER)");
  return gated ? gateWrites(raw, 1000) : raw;
}

async function writer(c: Awaited<ReturnType<typeof open>>, n: number) {
  const tx = await c.transaction("write");
  try {
    await tx.execute({ sql: "INSERT INTO t VALUES (?)", args: [n] });
    await new Promise((r) => setTimeout(r, 5));
    await tx.execute({ sql: "INSERT INTO t VALUES (?)", args: [n] });
    await tx.commit();
  } finally {
    tx.close();
  }
}

describe("gateWrites", () => {
  it("lets concurrent transactions and plain writes of one process take turns instead of failing busy", async () => {
    const c = await open(true);
    await Promise.all([writer(c, 1), writer(c, 2), c.execute({ sql: "INSERT INTO t VALUES (?)", args: [9] }), writer(c, 3)]);
    expect((await c.execute("SELECT count(*) AS n FROM t")).rows[0].n).toBe(7);
    c.close();
  });

  it("is needed: without it the same workload fails with SQLITE_BUSY", async () => {
    const c = await open(false);
    await expect(Promise.all([writer(c, 1), writer(c, 2)])).rejects.toThrow(/SQLITE_BUSY/);
    c.close();
  }, 10_000);

  it("does not make reads wait for an open transaction", async () => {
    const c = await open(true);
    const tx = await c.transaction("write");
    await tx.execute("INSERT INTO t VALUES (1)");
    const r = await c.execute("SELECT count(*) AS n FROM t");
    expect(r.rows[0].n).toBe(0);
    await tx.commit();
    tx.close();
    c.close();
  });
});
