// Group commit: use cases that arrive together run back to back inside ONE database transaction,
// each in its own savepoint (one alone needs none). Every use case keeps its all-or-nothing transaction (a failing one
// rolls back to its savepoint and gets its own error; the others go on), and its caller hears
// of success only once the shared transaction has committed. What is shared is the cost of a
// transaction on the embedded libSQL file: taking the write lock, a connection, and the commit
// (about 2 ms each here, more than the writes of one registration).
import type { Db } from "../../db/client";

export type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];

interface Job {
  fn: (tx: Tx) => Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** Use cases per shared transaction: long enough to share the commit, short enough that none waits long. */
export const MAX_GROUP = 64;

class GroupCommit {
  private queue: Job[] = [];
  private running = false;

  constructor(private readonly db: Db) {}

  run<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (this.running) return;
      this.running = true;
      // One turn of the event loop: requests that arrived together join the same group; a lone
      // one waits for nothing else.
      setImmediate(() => void this.drain());
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length) {
        const group = this.queue.splice(0, MAX_GROUP);
        const done: { job: Job; value: unknown }[] = [];
        const failed = new Set<Job>();
        try {
          await this.db.transaction(async (tx) => {
            // Alone in its group, a use case needs no savepoint: if it fails, the whole
            // transaction rolls back, and the catch below gives it its error.
            if (group.length === 1) {
              done.push({ job: group[0]!, value: await group[0]!.fn(tx) });
              return;
            }
            for (const job of group) {
              try {
                done.push({ job, value: await tx.transaction((sp) => job.fn(sp)) });
              } catch (e) {
                failed.add(job);
                job.reject(e);
              }
            }
          });
        } catch (e) {
          // The shared transaction failed (to begin or to commit): nothing of the group was
          // written, and every caller not answered yet hears why.
          for (const job of group) if (!failed.has(job)) job.reject(e);
          continue;
        }
        for (const d of done) d.job.resolve(d.value);
      }
    } finally {
      this.running = false;
    }
  }
}

const groups = new WeakMap<Db, GroupCommit>();

/**
 * Runs `fn` as one use case's transaction, grouped with others arriving at the same time. `fn`
 * must only touch the database (it holds the shared transaction while it runs) and must not
 * publish anything: its caller publishes after the promise resolves, i.e. after the commit.
 */
export function inGroupTransaction<T>(db: Db, fn: (tx: Tx) => Promise<T>): Promise<T> {
  let g = groups.get(db);
  if (!g) groups.set(db, (g = new GroupCommit(db)));
  return g.run(fn);
}
