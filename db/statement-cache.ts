// Prepared statements are reused per embedded connection, as Python's sqlite3 module does by
// default (cached_statements=128). The embedded libSQL client prepares every statement it runs
// from its text; the console runs the same few dozen statements over and over, and compiling
// them was a tenth of the console's time per registration. A cached statement is only ever used
// synchronously (prepared, bound, run and read to the end in one call), so reusing it cannot
// interleave two uses; SQLite re-compiles it by itself after a schema change. The client asks each
// statement for its result columns twice per run: they are read once per statement (the console
// names every column it selects, so a schema change cannot change a statement's columns).
import Database from "libsql";

/** Statements kept per connection (least recently used dropped first). */
export const STATEMENTS_PER_CONNECTION = 256;

interface Statement {
  columns: () => unknown;
}
type Prepare = (this: object, sql: string) => Statement;
let installed = false;

export function cacheStatements(): void {
  if (installed) return;
  installed = true;
  const proto = Database.prototype as unknown as { prepare: Prepare };
  const prepare = proto.prepare;
  const caches = new WeakMap<object, Map<string, Statement>>();
  proto.prepare = function cachedPrepare(sql: string) {
    let cache = caches.get(this);
    if (!cache) caches.set(this, (cache = new Map()));
    const cached = cache.get(sql);
    if (cached !== undefined) {
      // Most recently used last: the first key is the one to drop.
      cache.delete(sql);
      cache.set(sql, cached);
      return cached;
    }
    const stmt = prepare.call(this, sql);
    const columns = stmt.columns.bind(stmt);
    let known: unknown;
    stmt.columns = () => (known ??= columns());
    cache.set(sql, stmt);
    if (cache.size > STATEMENTS_PER_CONNECTION) cache.delete(cache.keys().next().value!);
    return stmt;
  };
}
