// Cleanup of orphans: finds what of ours is left on this host without an app the agent manages,
// and removes it when asked (see contract/cleanup.ts for the wire shapes).
//
//   workspace  <root>/<name>            a folder (or stray file / link) under the workspace root
//   git        <state>/git/<name>.git   a repository's git dir
//   compose    <state>/compose/<name>   a compose project folder
//   container  labels dcc.managed=true, dcc.host=<this host>, dcc.app not managed here
//   network    the same labels
//
// "Managed" means the agent holds a record of the app, in memory or as a state file on disk
// (an unreadable state file still counts: a damaged record must not cost an app its data).
// Only names that are DNS labels are considered under the root and the state dir: those are the
// only names the agent ever creates there, so `lost+found` and the like are never candidates.
//
// Safety: every removal works from a fresh scan, so only what is an orphan at that moment goes;
// the items of a request can narrow that, never widen it. Each item is removed holding its app's
// lock (the one lifecycle actions take) and after checking once more that no app of that name is
// managed. A container or network is inspected again and removed only if it still carries our
// labels for this host; containers without them are never touched. A folder is removed only as
// `<real root>/<label>` (no path from outside, no symlink in between), with a removal that unlinks
// links instead of following them, and never while any container (ours or not) bind-mounts it.
import type Dockerode from "dockerode";
import { lstat, readdir, realpath, rm } from "node:fs/promises";
import { isAbsolute, join, relative, sep } from "node:path";
import {
  ORPHAN_KINDS,
  type CleanupParams,
  type CleanupResult,
  type OrphanItem,
  type OrphanKind,
  type OrphanOutcome,
} from "../contract/cleanup";
import { AppNameSchema } from "../contract/validation";
import { errorMessage } from "./errors";

export type CleanupLog = (level: "info" | "warn" | "error", message: string) => void;

export interface OrphanCleanerOptions {
  workspaceRoot: string;
  /** The ops state dir: holds git/, compose/ and apps/. */
  stateDir: string;
  hostId: string;
  docker: Dockerode;
  /** Names of the apps the agent manages right now. */
  managed: () => Promise<Set<string>>;
  /** Runs `task` holding app `app`'s lock: no lifecycle action of that app runs meanwhile. */
  exclusive: <T>(app: string, task: () => Promise<T>) => Promise<T>;
  log: CleanupLog;
  now?: () => number;
  /** Most entries one folder's size walk reads before it stops (sizeComplete false); default 200,000. */
  walkLimit?: number;
  /** Largest JSON a result may take; lists are cut beyond it. Default 60,000 bytes (the channel caps results at 64 KiB). */
  maxResultBytes?: number;
}

/** How many found items a result lists at most (the total is always given). */
const MAX_FOUND = 200;
const KIND_ORDER: Record<OrphanKind, number> = { container: 0, network: 1, compose: 2, git: 3, workspace: 4 };

const isLabel = (s: string | undefined): s is string => typeof s === "string" && AppNameSchema.safeParse(s).success;

export function isInside(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel));
}

export interface TreeSize {
  /** Sum of lstat sizes of the folder and everything in it, hard links once (`du -sb`). */
  bytes: number;
  complete: boolean;
  /** Newest modification time in the tree (ms). */
  newestMtimeMs: number;
  entries: number;
}

/**
 * du -sb of `path` by a bounded walk: lstat only (links are counted, never followed), hard links
 * counted once, at most `limit` entries read. Unreadable parts make the answer a lower bound.
 */
export async function measureTree(path: string, limit = 200_000): Promise<TreeSize> {
  const out: TreeSize = { bytes: 0, complete: true, newestMtimeMs: 0, entries: 0 };
  const seen = new Set<string>();
  let top;
  try {
    top = await lstat(path);
  } catch {
    return { ...out, complete: false };
  }
  const count = (st: Awaited<ReturnType<typeof lstat>>) => {
    out.entries++;
    out.newestMtimeMs = Math.max(out.newestMtimeMs, Number(st.mtimeMs));
    if (!st.isDirectory() && Number(st.nlink) > 1) {
      const key = `${st.dev}:${st.ino}`;
      if (seen.has(key)) return;
      seen.add(key);
    }
    out.bytes += Number(st.size);
  };
  count(top);
  if (!top.isDirectory()) return out;
  const stack = [path];
  while (stack.length) {
    const dir = stack.pop()!;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      out.complete = false;
      continue;
    }
    for (let i = 0; i < names.length; ) {
      if (out.entries >= limit) {
        out.complete = false;
        return out;
      }
      const batch = names.slice(i, i + Math.min(64, limit - out.entries));
      i += batch.length;
      const stats = await Promise.all(batch.map((n) => lstat(join(dir, n)).then((st) => ({ n, st }), () => null)));
      for (const s of stats) {
        if (!s) {
          out.complete = false;
          continue;
        }
        count(s.st);
        if (s.st.isDirectory()) stack.push(join(dir, s.n));
      }
    }
  }
  return out;
}

interface Mount {
  container: string;
  source: string;
}

/** Cuts the result's lists until its JSON fits `max` bytes; says so with `truncated`. */
export function fitResult(result: CleanupResult, max: number): CleanupResult {
  const size = (r: CleanupResult) => Buffer.byteLength(JSON.stringify(r));
  if (size(result) <= max) return result;
  const r: CleanupResult = { ...result, truncated: true };
  while (r.found.length > 0 && size(r) > max) r.found = r.found.slice(0, Math.floor(r.found.length / 2));
  for (const key of ["selected", "skipped", "removed", "failed"] as const) {
    while (r[key].length > 0 && size(r) > max) r[key] = r[key].slice(0, Math.floor(r[key].length / 2));
  }
  return r;
}

export class OrphanCleaner {
  private readonly now: () => number;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: OrphanCleanerOptions) {
    this.now = o.now ?? Date.now;
  }

  /** Scan + optional removal, one run at a time. The command gate validated `params` (CleanupParamsSchema). */
  run(params: CleanupParams): Promise<CleanupResult> {
    const task = () => this.runChecked(params);
    const next = this.queue.then(task, task);
    this.queue = next.catch(() => {});
    return next;
  }

  /** Every orphan on the host right now, containers first, then networks, then folders. `keep` names apps that are never orphans. */
  async scan(keep: readonly string[] = []): Promise<OrphanItem[]> {
    const { hostId, docker } = this.o;
    const labels = ["dcc.managed=true", `dcc.host=${hostId}`];
    // Everything is listed before the managed set is read: a provision records its app before it
    // creates anything, so nothing of an app being provisioned right now can look orphaned.
    const [containers, networks, workspaces, gitDirs, composeDirs] = await Promise.all([
      docker.listContainers({ all: true, size: true, filters: { label: labels } }),
      docker.listNetworks({ filters: { label: labels } }),
      this.entries(await this.rootReal()),
      this.entries(join(this.o.stateDir, "git")),
      this.entries(join(this.o.stateDir, "compose")),
    ]);
    const managed = await this.o.managed();
    for (const name of keep) managed.add(name);
    const now = this.now();
    const age = (ms: number | null) => (ms === null || Number.isNaN(ms) ? null : Math.max(0, Math.floor((now - ms) / 1000)));
    const iso = (ms: number | null) => (ms === null || Number.isNaN(ms) ? null : new Date(ms).toISOString());
    const items: OrphanItem[] = [];

    for (const c of containers) {
      const l = c.Labels ?? {};
      if (!this.ours(l)) continue;
      const app = l["dcc.app"];
      if (isLabel(app) && managed.has(app)) continue;
      const created = typeof c.Created === "number" ? c.Created * 1000 : null;
      items.push({
        kind: "container",
        id: c.Id,
        name: (c.Names?.[0] ?? c.Id.slice(0, 12)).replace(/^\//, "").slice(0, 4096),
        app: isLabel(app) ? app : null,
        sizeBytes: Math.max(0, Math.trunc(Number((c as { SizeRw?: number }).SizeRw ?? 0)) || 0),
        sizeComplete: true,
        at: iso(created),
        ageSeconds: age(created),
        state: String(c.State ?? "").slice(0, 32),
        reason: isLabel(app) ? `labelled for app ${app}, which this host does not manage` : "carries our labels but names no app",
      });
    }
    for (const n of networks) {
      const l = n.Labels ?? {};
      if (!this.ours(l)) continue;
      const app = l["dcc.app"];
      if (isLabel(app) && managed.has(app)) continue;
      const created = n.Created ? Date.parse(n.Created) : null;
      items.push({
        kind: "network",
        id: n.Id,
        name: String(n.Name ?? n.Id).slice(0, 4096),
        app: isLabel(app) ? app : null,
        sizeBytes: 0,
        sizeComplete: true,
        at: iso(created),
        ageSeconds: age(created),
        reason: isLabel(app) ? `labelled for app ${app}, which this host does not manage` : "carries our labels but names no app",
      });
    }
    const folders: [OrphanKind, string, { name: string; dir: boolean }[], (n: string) => string | null, string][] = [
      ["compose", join(this.o.stateDir, "compose"), composeDirs, (n) => n, "compose folder of an app this host does not manage"],
      ["git", join(this.o.stateDir, "git"), gitDirs, (n) => (n.endsWith(".git") ? n.slice(0, -4) : null), "git directory of an app this host does not manage"],
      ["workspace", await this.rootReal(), workspaces, (n) => n, "no app on this host uses this workspace"],
    ];
    for (const [kind, parent, entries, appOf, reason] of folders) {
      for (const e of entries) {
        const app = appOf(e.name);
        if (!isLabel(app ?? undefined) || managed.has(app!)) continue;
        const path = join(parent, e.name);
        const size = await measureTree(path, this.o.walkLimit);
        const mtime = size.newestMtimeMs || null;
        items.push({
          kind,
          id: app!,
          name: path,
          app: app!,
          sizeBytes: Math.trunc(size.bytes),
          sizeComplete: size.complete,
          at: iso(mtime),
          ageSeconds: age(mtime),
          reason: e.dir ? reason : `${reason} (not a folder)`,
        });
      }
    }
    return items;
  }

  private async runChecked(params: CleanupParams): Promise<CleanupResult> {
    const keep = params.keep ?? [];
    const found = await this.scan(keep);
    const byKey = new Map(found.map((i) => [key(i), i]));
    const skipped: OrphanOutcome[] = [];
    let chosen: OrphanItem[];
    if (params.items) {
      chosen = [];
      const asked = new Set<string>();
      for (const ref of params.items) {
        const k = key(ref);
        if (asked.has(k)) continue;
        asked.add(k);
        const item = byKey.get(k);
        if (item) chosen.push(item);
        else skipped.push({ ...ref, reason: "not an orphan on this host (any more): left alone" });
      }
    } else chosen = [...found];
    if (params.minAgeSeconds !== undefined) {
      const min = params.minAgeSeconds;
      const young = chosen.filter((i) => i.ageSeconds === null || i.ageSeconds < min);
      for (const i of young) skipped.push({ ...outcome(i), reason: i.ageSeconds === null ? "age unknown" : `younger than ${min} s (changed ${i.ageSeconds} s ago)` });
      chosen = chosen.filter((i) => !young.includes(i));
    }
    chosen.sort((a, b) => KIND_ORDER[a.kind] - KIND_ORDER[b.kind] || a.name.localeCompare(b.name));

    const removed: OrphanOutcome[] = [];
    const failed: OrphanOutcome[] = [];
    let selected = chosen;
    let after = found;
    if (params.dryRun) {
      // A folder that a container which stays mounts would be refused: say so now.
      const mounts = await this.mounts();
      const going = new Set(chosen.filter((i) => i.kind === "container").map((i) => i.id));
      selected = [];
      for (const item of chosen) {
        let holder: string | undefined;
        if (isFolder(item.kind)) holder = mounts.find((m) => !going.has(m.container) && overlaps(item.name, m.source))?.container;
        if (item.kind === "network") holder = (await this.attached(item.id)).find((id) => !going.has(id));
        if (holder) skipped.push({ ...outcome(item), reason: `${item.kind === "network" ? "in use by" : "mounted by"} container ${holder.slice(0, 12)}, which stays` });
        else selected.push(item);
      }
    } else {
      for (const item of chosen) {
        try {
          const r = await this.removeOne(item, keep);
          if (r === true) removed.push(outcome(item));
          else skipped.push({ ...outcome(item), reason: r });
        } catch (err) {
          failed.push({ ...outcome(item), reason: errorMessage(err).slice(0, 1000) });
        }
      }
      if (removed.length) this.o.log("info", `cleanup removed ${removed.length} orphan(s): ${removed.map((r) => `${r.kind} ${r.name}`).join(", ").slice(0, 2000)}`);
      if (failed.length) this.o.log("warn", `cleanup could not remove ${failed.length} orphan(s): ${failed.map((r) => `${r.kind} ${r.name}: ${r.reason}`).join("; ").slice(0, 2000)}`);
      after = await this.scan(keep);
    }
    const bytes = (list: { kind: OrphanKind; id: string }[]) =>
      list.reduce((sum, r) => sum + (byKey.get(key(r))?.sizeBytes ?? 0), 0);
    const result: CleanupResult = {
      dryRun: params.dryRun,
      scannedAt: new Date(this.now()).toISOString(),
      found: after.slice(0, MAX_FOUND),
      foundTotal: after.length,
      selected: selected.map(outcome),
      removed,
      skipped,
      failed,
      freedBytes: bytes(params.dryRun ? selected : removed),
      ...(after.length > MAX_FOUND ? { truncated: true } : {}),
    };
    return fitResult(result, this.o.maxResultBytes ?? 60_000);
  }

  /** true when removed; a reason when it was left alone on purpose; throws when removal failed. */
  private async removeOne(item: OrphanItem, keep: readonly string[]): Promise<true | string> {
    const guarded = async (): Promise<true | string> => {
      if (item.app && (keep.includes(item.app) || (await this.o.managed()).has(item.app))) return `app ${item.app} is managed on this host again: left alone`;
      switch (item.kind) {
        case "container":
          return this.removeContainer(item);
        case "network":
          return this.removeNetwork(item);
        default:
          return this.removeFolder(item);
      }
    };
    return item.app ? this.o.exclusive(item.app, guarded) : guarded();
  }

  private async removeContainer(item: OrphanItem): Promise<true | string> {
    const c = this.o.docker.getContainer(item.id);
    let info;
    try {
      info = await c.inspect();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return "already gone";
      throw err;
    }
    const labels = info.Config?.Labels ?? {};
    // Inspected again just now: only a container that still carries our labels for this host, for
    // the same app, goes. Anything else (labels changed, an id reused) is not touched.
    const sameApp = item.app === null ? !isLabel(labels["dcc.app"]) : labels["dcc.app"] === item.app;
    if (!this.ours(labels) || !sameApp) return "no longer carries our labels for this host: left alone";
    try {
      await c.remove({ force: true, v: true });
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return "already gone";
      throw err;
    }
    return true;
  }

  private async removeNetwork(item: OrphanItem): Promise<true | string> {
    const n = this.o.docker.getNetwork(item.id);
    let info;
    try {
      info = (await n.inspect()) as { Labels?: Record<string, string>; Containers?: Record<string, unknown> };
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return "already gone";
      throw err;
    }
    const labels = info.Labels ?? {};
    const sameApp = item.app === null ? !isLabel(labels["dcc.app"]) : labels["dcc.app"] === item.app;
    if (!this.ours(labels) || !sameApp) return "no longer carries our labels for this host: left alone";
    // A container still attached (one without our labels, say) is never disconnected for this.
    const attached = await this.attached(item.id);
    if (attached.length) return `in use by container ${attached[0].slice(0, 12)}: left alone`;
    try {
      await n.remove();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return "already gone";
      // e.g. "has active endpoints": a container of someone else's is still attached; we never detach it.
      throw new Error(`Docker refused: ${errorMessage(err)}`);
    }
    return true;
  }

  private async removeFolder(item: OrphanItem): Promise<true | string> {
    if (!isLabel(item.id)) return "not a folder name the agent uses: left alone";
    const parent =
      item.kind === "workspace" ? await this.rootReal() : item.kind === "git" ? join(this.o.stateDir, "git") : join(this.o.stateDir, "compose");
    const parentReal = await realpath(parent);
    const path = join(parentReal, item.kind === "git" ? `${item.id}.git` : item.id);
    // One path component under the real parent: no `..`, no link between the parent and the item.
    if (!isInside(parentReal, path) || path === parentReal || relative(parentReal, path).includes(sep)) throw new Error(`${path} is not directly under ${parentReal}`);
    try {
      await lstat(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return "already gone";
      throw err;
    }
    const holder = (await this.mounts()).find((m) => overlaps(path, m.source));
    if (holder) return `mounted by container ${holder.container.slice(0, 12)}: remove that container first`;
    // fs.rm unlinks a link (at the top or anywhere inside) instead of following it.
    await rm(path, { recursive: true, force: true, maxRetries: 2 });
    return true;
  }

  /** Bind-mount sources of every container on the engine, ours or not (read only, to avoid pulling data from under one). */
  private async mounts(): Promise<Mount[]> {
    const out: Mount[] = [];
    for (const c of await this.o.docker.listContainers({ all: true })) {
      for (const m of c.Mounts ?? []) {
        if (m.Type !== "bind" || !m.Source) continue;
        out.push({ container: c.Id, source: await realpath(m.Source).catch(() => m.Source) });
      }
    }
    return out;
  }

  /** Ids of the containers attached to a network, running or not (a stopped one would fail to start without it). */
  private async attached(networkId: string): Promise<string[]> {
    const ids = new Set<string>();
    try {
      const info = (await this.o.docker.getNetwork(networkId).inspect()) as { Containers?: Record<string, unknown> };
      for (const id of Object.keys(info.Containers ?? {})) ids.add(id);
    } catch {
      // gone: nothing attached
    }
    for (const c of await this.o.docker.listContainers({ all: true })) {
      const nets = Object.values(c.NetworkSettings?.Networks ?? {}) as { NetworkID?: string }[];
      if (nets.some((n) => n.NetworkID === networkId)) ids.add(c.Id);
    }
    return [...ids];
  }

  private ours(labels: Record<string, string>): boolean {
    return labels["dcc.managed"] === "true" && labels["dcc.host"] === this.o.hostId;
  }

  private rootRealPromise: Promise<string> | undefined;
  private rootReal(): Promise<string> {
    this.rootRealPromise ??= realpath(this.o.workspaceRoot).catch((err) => {
      this.rootRealPromise = undefined;
      throw err;
    });
    return this.rootRealPromise;
  }

  /** Entries of a folder, with whether each is a real folder (a link is not). */
  private async entries(dir: string): Promise<{ name: string; dir: boolean }[]> {
    let list;
    try {
      list = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
    return list
      .map((e) => ({ name: e.name, dir: e.isDirectory() }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }
}

function isFolder(kind: OrphanKind): boolean {
  return kind === "workspace" || kind === "git" || kind === "compose";
}

function overlaps(path: string, source: string): boolean {
  return isInside(path, source) || isInside(source, path);
}

function key(r: { kind: string; id: string }): string {
  return `${r.kind}\u0000${r.id}`;
}

function outcome(i: OrphanItem): OrphanOutcome {
  return { kind: i.kind, id: i.id, name: i.name, sizeBytes: i.sizeBytes };
}

export { ORPHAN_KINDS };
