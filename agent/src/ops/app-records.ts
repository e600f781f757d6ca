// The agent's record of each app: its last applied spec, commit and branch, in
// `<stateDir>/apps/<name>.json`. Written atomically (temp file + rename).
import { randomBytes } from "node:crypto";
import { readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { deploySpecSchema, type DeploySpec } from "../contract/spec";
import type { RepositoryRules } from "../contract/validation";
import type { RefKind } from "./git-store";

export interface AppRecord {
  spec: DeploySpec;
  commitSha: string | null;
  /** The branch or tag the work tree follows (for a commit pin: the SHA); null before the first clone. */
  branch: string | null;
  /** What `branch` is: a branch is followed by reinstalls, a tag or commit stays. Absent: a branch. */
  refKind?: RefKind | null;
  /** The gitRef the app asked for when `branch` was resolved; null: the remote's default branch. */
  gitRef?: string | null;
  /** False while a provision is in progress (or was cut short). */
  provisioned: boolean;
  /** Why the last deploy of an app that is not provisioned failed (kept across agent restarts). */
  lastError?: string | null;
  updatedAt: string;
}

function recordSchema(rules: RepositoryRules) {
  return z.object({
    spec: deploySpecSchema(rules),
    commitSha: z.string().regex(/^[0-9a-f]{40,64}$/).nullable(),
    branch: z.string().max(200).nullable(),
    refKind: z.enum(["branch", "tag", "commit"]).nullable().optional(),
    gitRef: z.string().max(200).nullable().optional(),
    provisioned: z.boolean(),
    lastError: z.string().max(4000).nullable().optional(),
    updatedAt: z.string(),
  });
}

export class AppStore {
  private readonly schema;

  constructor(
    private readonly dir: string,
    rules: RepositoryRules,
  ) {
    // Records were validated when written; reading them again with the same schema means a
    // hand-edited or corrupt file cannot smuggle anything past the checks.
    this.schema = recordSchema(rules);
  }

  private file(name: string): string {
    return join(this.dir, `${name}.json`);
  }

  async read(name: string): Promise<AppRecord | null> {
    let text: string;
    try {
      text = await readFile(this.file(name), "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw err;
    }
    const parsed = this.schema.safeParse(JSON.parse(text));
    if (!parsed.success || parsed.data.spec.name !== name) throw new Error(`state file of app ${name} is not valid`);
    return parsed.data;
  }

  async write(record: AppRecord): Promise<void> {
    const target = this.file(record.spec.name);
    const temp = `${target}.${randomBytes(4).toString("hex")}.tmp`;
    await writeFile(temp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
    await rename(temp, target);
  }

  async remove(name: string): Promise<void> {
    await rm(this.file(name), { force: true });
  }

  async names(): Promise<string[]> {
    const entries = await readdir(this.dir).catch(() => [] as string[]);
    return entries.filter((e) => e.endsWith(".json")).map((e) => e.slice(0, -".json".length));
  }
}

/**
 * The ref a fetch follows: the spec's gitRef; without one, the branch the app was first cloned
 * from (the remote's default then), unless the app was pinned before (then the remote's default now).
 */
export function refToFollow(spec: DeploySpec, record: AppRecord): string | null {
  if (spec.gitRef) return spec.gitRef;
  return record.gitRef || record.refKind === "tag" || record.refKind === "commit" ? null : record.branch;
}

/** Key-order-independent comparison of two specs. */
export function sameSpec(a: DeploySpec, b: DeploySpec): boolean {
  return stableJson(a) === stableJson(b);
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}

/** The app records in memory, written through to the store: the actions' one source of what is installed. */
export class AppRecords {
  private readonly records = new Map<string, AppRecord>();

  constructor(private readonly store: AppStore) {}

  /** Loads every readable record; an unreadable one is reported and skipped (its files stay protected). */
  async load(onError: (name: string, err: unknown) => void): Promise<AppRecord[]> {
    for (const name of await this.store.names()) {
      try {
        const record = await this.store.read(name);
        if (record) this.records.set(name, record);
      } catch (err) {
        onError(name, err);
      }
    }
    return [...this.records.values()];
  }

  get(name: string): AppRecord | undefined {
    return this.records.get(name);
  }

  all(): AppRecord[] {
    return [...this.records.values()];
  }

  async save(record: AppRecord): Promise<void> {
    record.updatedAt = new Date().toISOString();
    await this.store.write(record);
    this.records.set(record.spec.name, record);
  }

  async remove(name: string): Promise<void> {
    await this.store.remove(name);
    this.records.delete(name);
  }

  /** In memory and every state file on disk (an unreadable record still protects its app from cleanup). */
  async names(): Promise<Set<string>> {
    return new Set([...this.records.keys(), ...(await this.store.names())]);
  }
}
