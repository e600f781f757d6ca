// One writer at a time inside a process. The embedded libSQL client keeps a pool of connections:
// a write transaction holds one while its caller awaits between statements, and a write on
// another connection of the same process then blocks the whole thread inside SQLite's busy
// handler — so the transaction it waits for can never commit, and the write fails with
// SQLITE_BUSY after the busy timeout. Every write transaction and every write outside one
// therefore passes this gate first. Reads never do: WAL readers are not blocked by a writer, and
// a read inside a transaction callback must not wait for that same transaction.
import type { Client, InStatement, Transaction, TransactionMode } from "@libsql/client";

const READ = /^\s*(select|explain)\b/i;

class Gate {
  private tail: Promise<void> = Promise.resolve();

  /** Resolves with a release function once every earlier holder has released (or after `maxWaitMs`). */
  acquire(maxWaitMs?: number): Promise<() => void> {
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const before = this.tail;
    this.tail = before.then(() => mine);
    let released = false;
    const once = () => {
      if (!released) (released = true), release();
    };
    if (maxWaitMs === undefined) return before.then(() => once);
    // A write that waits longer than the busy timeout goes ahead and lets SQLite decide.
    return Promise.race([before, new Promise<void>((r) => setTimeout(r, maxWaitMs).unref())]).then(() => once);
  }
}

const sqlOf = (stmt: InStatement): string => (typeof stmt === "string" ? stmt : stmt.sql);

/** Wraps a libSQL client so its writes and write transactions take turns within this process. */
export function gateWrites(client: Client, busyTimeoutMs: number): Client {
  const gate = new Gate();
  const gated = async <T>(fn: () => Promise<T>): Promise<T> => {
    const release = await gate.acquire(busyTimeoutMs);
    try {
      return await fn();
    } finally {
      release();
    }
  };
  return new Proxy(client, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function") return value;
      switch (prop) {
        case "execute":
          return (stmt: InStatement, ...rest: unknown[]) =>
            READ.test(sqlOf(stmt)) ? value.call(target, stmt, ...rest) : gated(() => value.call(target, stmt, ...rest));
        case "batch":
          return (stmts: InStatement[], mode?: TransactionMode) =>
            mode === "read" ? value.call(target, stmts, mode) : gated(() => value.call(target, stmts, mode));
        case "executeMultiple":
        case "migrate":
          return (...args: unknown[]) => gated(() => value.apply(target, args));
        case "transaction":
          return async (mode?: TransactionMode) => {
            if (mode === "read") return value.call(target, mode);
            const release = await gate.acquire();
            let tx: Transaction;
            try {
              tx = await value.call(target, mode);
            } catch (e) {
              release();
              throw e;
            }
            // commit, rollback and close each end the transaction (synchronously, in the
            // embedded client): whichever comes first lets the next writer in.
            for (const end of ["commit", "rollback", "close"] as const) {
              const original = tx[end].bind(tx) as (...a: unknown[]) => unknown;
              (tx as unknown as Record<string, unknown>)[end] = (...args: unknown[]) => {
                try {
                  return original(...args);
                } finally {
                  release();
                }
              };
            }
            return tx;
          };
        default:
          return value.bind(target);
      }
    },
  });
}
