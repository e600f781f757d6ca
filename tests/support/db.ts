// A libSQL file of its own with the console's committed migrations, for tests of services on the
// real database (one per test file, or per test where each needs a fresh one).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { openDb, prepareDb, type Db } from "../../db/client";

export interface MigratedDb {
  db: Db;
  url: string;
  /** Closes the connections and removes the file's folder. */
  dispose(): void;
}

export async function migratedDb(prefix = "dcc-db-"): Promise<MigratedDb> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const url = `file:${join(dir, "dcc.db")}`;
  const db = openDb({ url });
  await prepareDb(db, url, resolve(import.meta.dirname, "../../db/migrations"));
  return {
    db,
    url,
    dispose() {
      db.$client.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
