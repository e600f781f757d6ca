import type { Db } from "../../db/client";
import { inGroupTransaction } from "./group-commit.server";

/** A stand-in database that records transactions and savepoints; `fail` makes BEGIN or COMMIT throw. */
function fakeDb(fail?: "begin" | "commit") {
  const log: string[] = [];
  let n = 0;
  const db = {
    async transaction(fn: (tx: unknown) => Promise<unknown>) {
      const t = ++n;
      if (fail === "begin") throw new Error("SQLITE_BUSY at BEGIN");
      log.push(`begin ${t}`);
      const tx = {
        async transaction(job: (sp: unknown) => Promise<unknown>) {
          log.push("savepoint");
          try {
            const v = await job(tx);
            log.push("release");
            return v;
          } catch (e) {
            log.push("rollback to savepoint");
            throw e;
          }
        },
      };
      const v = await fn(tx);
      if (fail === "commit") throw new Error("SQLITE_FULL at COMMIT");
      log.push(`commit ${t}`);
      return v;
    },
  };
  return { db: db as unknown as Db, log };
}

describe("group commit", () => {
  it("runs use cases that arrive together in one transaction, a savepoint each, answering after the commit", async () => {
    const { db, log } = fakeDb();
    const results = await Promise.all([1, 2, 3].map((i) => inGroupTransaction(db, async () => (log.push(`job ${i}`), i))));
    expect(results).toEqual([1, 2, 3]);
    expect(log).toEqual(["begin 1", "savepoint", "job 1", "release", "savepoint", "job 2", "release", "savepoint", "job 3", "release", "commit 1"]);
  });

  it("rolls a failing use case back to its savepoint and gives it its own error; the others commit", async () => {
    const { db, log } = fakeDb();
    const r = await Promise.allSettled([
      inGroupTransaction(db, async () => "a"),
      inGroupTransaction(db, async () => {
        throw new Error("name is already taken");
      }),
      inGroupTransaction(db, async () => "c"),
    ]);
    expect(r.map((x) => (x.status === "fulfilled" ? x.value : (x.reason as Error).message))).toEqual(["a", "name is already taken", "c"]);
    expect(log.filter((l) => l.startsWith("commit") || l.startsWith("rollback"))).toEqual(["rollback to savepoint", "commit 1"]);
  });

  it("answers every caller when the shared transaction cannot begin or commit (none hangs, none is told it succeeded)", async () => {
    for (const fail of ["begin", "commit"] as const) {
      const { db } = fakeDb(fail);
      const r = await Promise.allSettled([inGroupTransaction(db, async () => 1), inGroupTransaction(db, async () => 2)]);
      expect(r.every((x) => x.status === "rejected")).toBe(true);
    }
  });

  it("runs a use case alone in its group without a savepoint; if it fails, nothing commits and its caller gets its error", async () => {
    const { db, log } = fakeDb();
    expect(await inGroupTransaction(db, async () => (log.push("job"), 7))).toBe(7);
    expect(log).toEqual(["begin 1", "job", "commit 1"]);
    await expect(inGroupTransaction(db, async () => Promise.reject(new Error("name is already taken")))).rejects.toThrow("name is already taken");
    expect(log).toEqual(["begin 1", "job", "commit 1", "begin 2"]);
  });

  it("starts a new group for what arrives later", async () => {
    const { db, log } = fakeDb();
    await inGroupTransaction(db, async () => 1);
    await inGroupTransaction(db, async () => 2);
    expect(log.filter((l) => l.startsWith("commit"))).toEqual(["commit 1", "commit 2"]);
  });
});
