// Statements built once. Drizzle turns a query builder into SQL text on every call: for the
// ~45-column insert of a new app with its returned row, that building (entity checks, column
// walks, escaping) cost more than SQLite running the statement. A prepared drizzle query is built
// once with placeholders and run with values, but drizzle binds it to the session it was made on:
// one made on the database would run outside the caller's transaction (on another connection,
// which the write gate would make wait for that very transaction). `prepared()` keeps the built
// query and runs it on whichever reader the caller holds — the database, a transaction or a
// savepoint — with that reader's connection.
//
// It relies on two fields drizzle-orm's libSQL session and prepared query carry at runtime
// (`session.client`/`session.tx`, `client`/`tx`); prepared.test.ts pins that behaviour on a real
// libSQL file (a rolled-back transaction takes its prepared writes with it).
import { is, Param, Placeholder, sql, type DriverValueEncoder } from "drizzle-orm";
interface Session {
  client: unknown;
  tx?: unknown;
}

/**
 * `build` describes the statement with `sql.placeholder(name)` where values go; the returned
 * function gives the prepared query for a reader (the database, or a transaction or savepoint of
 * it): `stmt(tx).all({ name: "a" })`. `R` is what `build` needs of it, e.g. `Pick<Db, "insert">`.
 */
export function prepared<R, P extends object>(build: (db: R) => { prepare(): P }): (reader: R) => P {
  let built: P | undefined;
  return (reader) => {
    built ??= keepNulls(build(reader).prepare());
    const { client, tx } = (reader as unknown as { session: Session }).session;
    return Object.create(built, { client: { value: client }, tx: { value: tx } }) as P;
  };
}

/** `{ a: sql.placeholder("a"), … }`: the values of a prepared insert, one placeholder per column. */
export function placeholders<const K extends string>(keys: readonly K[]): Record<K, Placeholder<K>> {
  return Object.fromEntries(keys.map((k) => [k, sql.placeholder(k)])) as Record<K, Placeholder<K>>;
}

/**
 * A value given for a placeholder goes through its column's encoder, null included: a JSON column
 * would store the text `null` where a query built by drizzle stores SQL NULL (it never encodes
 * null). Each placeholder's encoder is wrapped once so that null (or a value left out) stays NULL.
 */
function keepNulls<P extends object>(query: P): P {
  const { params } = (query as unknown as { query: { params: unknown[] } }).query;
  for (const p of params) {
    if (!is(p, Param) || !is(p.value, Placeholder)) continue;
    const encoder = p.encoder as DriverValueEncoder<unknown, unknown>;
    (p as { encoder: DriverValueEncoder<unknown, unknown> }).encoder = {
      mapToDriverValue: (v: unknown) => (v === null || v === undefined ? null : encoder.mapToDriverValue(v)),
    };
  }
  return query;
}
