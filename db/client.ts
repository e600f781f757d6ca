// One libSQL client per process: an embedded file by default, Turso/sqld by URL. Created once at
// start and handed down; request handlers never open their own.
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { createClient, type Client } from "@libsql/client";
import { drizzle, type LibSQLDatabase } from "drizzle-orm/libsql";
import { migrate } from "drizzle-orm/libsql/migrator";
import * as schema from "./schema";
import { cacheStatements } from "./statement-cache";
import { gateWrites } from "./write-gate";

export type Db = LibSQLDatabase<typeof schema> & { $client: Client };

export interface DbOptions {
  url: string;
  authToken?: string;
}

export function openDb({ url, authToken }: DbOptions): Db {
  if (url.startsWith("file:")) {
    cacheStatements();
    const path = url.slice("file:".length).split("?")[0];
    if (path && path !== ":memory:") mkdirSync(dirname(resolve(path)), { recursive: true });
  }
  // `timeout` is the busy timeout of embedded files, so several processes can share one file;
  // within one process, writers take turns (see write-gate.ts).
  const busyTimeoutMs = 5000;
  const raw = createClient({ url, authToken, timeout: busyTimeoutMs });
  const client = url.startsWith("file:") ? gateWrites(raw, busyTimeoutMs) : raw;
  return drizzle(client, { schema, casing: "snake_case" }) as Db;
}

/** Applies the committed migrations; embedded files switch to WAL (kept in the file itself). */
export async function prepareDb(db: Db, url: string, migrationsFolder: string): Promise<void> {
  if (url.startsWith("file:")) await db.$client.execute("PRAGMA journal_mode = WAL");
  await migrate(db, { migrationsFolder });
}
