// The app's secrets on this host: one file per name in `<compose dir>/secrets` (agent-owned state,
// never in the workspace or the compose file), readable only by the container's user, mounted
// read-only into the container, where the entrypoint exports them. The values are also what every
// relay of the app's output hides (logs, install output, errors).
import { chown, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { EnvNameSchema } from "../contract/app-config";
import { containerUserIsOther, type AppPaths, type Layout } from "./workspace";

export function secretsDirOf(paths: Pick<AppPaths, "composeDir">): string {
  return join(paths.composeDir, "secrets");
}

export class AppSecrets {
  private readonly cache = new Map<string, string[]>();

  constructor(private readonly o: { layout: Layout; uid: number; gid: number }) {}

  /** Creates the (possibly empty) folder the compose file mounts. */
  async ensureDir(paths: Pick<AppPaths, "composeDir">): Promise<string> {
    const dir = secretsDirOf(paths);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if (containerUserIsOther(this.o.uid)) await chown(dir, this.o.uid, this.o.gid);
    return dir;
  }

  /** Makes the folder hold exactly `values`. */
  async write(app: string, values: Record<string, string>): Promise<void> {
    const paths = await this.o.layout.paths(app);
    const dir = await this.ensureDir(paths);
    for (const f of await readdir(dir)) await rm(join(dir, f), { force: true });
    for (const [name, value] of Object.entries(values)) {
      if (!EnvNameSchema.safeParse(name).success) continue; // checked by the gate; a file name must never be anything else
      const file = join(dir, name);
      await writeFile(file, value, { mode: 0o400 });
      if (containerUserIsOther(this.o.uid)) await chown(file, this.o.uid, this.o.gid);
    }
    this.cache.set(app, Object.values(values));
  }

  /** The app's secret values (for redaction); none when it has no folder. */
  async values(app: string): Promise<string[]> {
    const hit = this.cache.get(app);
    if (hit) return hit;
    const dir = secretsDirOf(await this.o.layout.paths(app));
    let names: string[] = [];
    try {
      names = await readdir(dir);
    } catch {
      return [];
    }
    const values = await Promise.all(names.map((n) => readFile(join(dir, n), "utf8").catch(() => "")));
    const list = values.filter((v) => v.length > 0);
    this.cache.set(app, list);
    return list;
  }

  /** The values known without reading the disk (loaded at start and on every write). */
  cached(app: string): string[] {
    return this.cache.get(app) ?? [];
  }

  /** Every app's known values (for text that names no app, such as the agent's own log lines). */
  allCached(): string[] {
    return [...this.cache.values()].flat();
  }

  forget(app: string): void {
    this.cache.delete(app);
  }
}
