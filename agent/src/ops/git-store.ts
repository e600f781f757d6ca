// The host's git object store: one shallow bare repository per remote URL, `<stateDir>/stores/<key>.git`,
// written only by the agent and mounted nowhere. Apps' git dirs (`<stateDir>/git/<name>.git`) keep
// no objects of their own: `objects/info/alternates` borrows the store's. So a second app from the
// same repository, and every reinstall, fetches only what the store lacks (nothing, when the branch
// has not moved), and a work tree is written straight from the store.
//
// Objects are only ever removed by `maintain`, under the store's lock: it pins every commit a
// borrowing git dir still names (its refs and ORIG_HEAD, the rollback target) as `refs/dcc/keep/*`,
// then repacks and prunes what nothing reaches. A store no git dir borrows from is removed. Automatic
// gc is off in stores (gc.auto=0): git's own prune cannot see borrowers' refs.
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { OpsError } from "./errors";
import { removeTree } from "./workspace";

/** Runs a local git command (GIT_DIR / GIT_WORK_TREE as given); resolves with stdout. */
export type LocalGit = (args: string[], dirs: { gitDir?: string; workTree?: string }, signal?: AbortSignal) => Promise<string>;
/** Runs a network git command (clone / fetch) with progress, time limits and abort. */
export type NetworkGit = (what: "clone" | "fetch" | "ls-remote", args: string[], gitDir: string | null, signal?: AbortSignal, progress?: GitProgress) => Promise<string>;
/** git's own progress lines: the stage (counting, compressing, receiving, resolving) and its percent. */
export type GitProgress = (stage: string, pct: number) => void;

export interface StoreSync {
  url: string;
  /** The app's git dir: created when missing, pointed at the store, its tracking ref set. */
  gitDir: string;
  /** Branch, tag or full commit SHA (checked by the caller); null: the remote's default branch. */
  ref: string | null;
  signal?: AbortSignal;
  progress?: GitProgress;
}

/** What a ref turned out to be: a branch is followed by later reinstalls, a tag or commit stays. */
export type RefKind = "branch" | "tag" | "commit";

export interface Synced {
  commitSha: string;
  kind: RefKind;
  /** The branch or tag name (for a commit: the SHA). */
  name: string;
}

interface Target extends Synced {
  /** What `git fetch` is asked for: a refspec built here from checked names, or the SHA itself. */
  refspec: string;
}

const SHA = /^[0-9a-f]{40,64}$/;
const KEEP = "refs/dcc/keep";

export class GitStore {
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(
    private readonly o: {
      /** `<stateDir>/stores` */
      dir: string;
      /** `<stateDir>/git`: where borrowing git dirs live. */
      gitDirs: string;
      local: LocalGit;
      network: NetworkGit;
      /** Checks a ref name the remote reported (its default branch) before it is used; throws. */
      checkName: (name: string) => void;
    },
  ) {}

  /** The store of a repository URL (the URL as validated, byte for byte). */
  pathOf(url: string): string {
    return join(this.o.dir, `${createHash("sha256").update(url).digest("hex").slice(0, 32)}.git`);
  }

  /**
   * Resolves the ref (asking the remote which commit a branch or tag names now), fetches that
   * commit at depth 1 unless the store has it, and points the app's git dir at it, all under the
   * store's lock, so no maintenance can run between the fetch and the app's ref naming the commit.
   */
  sync(req: StoreSync): Promise<Synced> {
    const store = this.pathOf(req.url);
    // The app's git dir needs nothing from the network: it is made while the store fetches.
    const gitDirMade = this.ensureGitDir(req.gitDir);
    gitDirMade.catch(() => {});
    return this.exclusive(store, async () => {
      const haveStore = await exists(join(store, "HEAD"));
      const target = await this.resolve(req, haveStore ? store : null);
      // Asked first, because a shallow fetch of a tip the store already has may send the whole
      // tree again (git 2.39, about half the time here); a moved tip is then fetched at depth 1,
      // which sends only its new objects.
      if (!haveStore) await this.create(store, req, target.refspec);
      else if (!(await this.hasCommit(store, target.commitSha))) await this.fetch(store, req, target.refspec);
      const commitSha = (await this.o.local(["rev-parse", "--verify", "-q", `${target.commitSha}^{commit}`], { gitDir: store })).trim();
      if (commitSha !== target.commitSha) throw new OpsError("FAILED", `${req.url} did not send commit ${target.commitSha}`);
      await gitDirMade;
      await this.link(req.gitDir, store, target);
      return { commitSha, kind: target.kind, name: target.name };
    });
  }

  /** A SHA is taken as is; a name is looked up on the remote (a tag wins over a branch, as in git). */
  private async resolve(req: StoreSync, store: string | null): Promise<Target> {
    const ref = req.ref;
    if (ref !== null && SHA.test(ref)) return { kind: "commit", name: ref, commitSha: ref, refspec: ref };
    const patterns = ref === null ? ["HEAD"] : [`refs/tags/${ref}`, `refs/tags/${ref}^{}`, `refs/heads/${ref}`];
    // Before the first clone this question is part of cloning (its time limit and messages say "clone").
    const out = await this.o.network(store ? "ls-remote" : "clone", ["ls-remote", "--symref", "--", req.url, ...patterns], store, req.signal);
    const refs = new Map<string, string>();
    let head: string | null = null;
    for (const line of out.split("\n")) {
      const symref = /^ref: refs\/heads\/(\S+)\tHEAD$/.exec(line);
      if (symref) head = symref[1]!;
      const m = /^([0-9a-f]{40,64})\t(\S+)$/.exec(line);
      if (m) refs.set(m[2]!, m[1]!);
    }
    if (ref === null) {
      if (!head || !refs.get("HEAD")) throw new OpsError("FAILED", `${req.url} has no default branch (is the repository empty?)`);
      this.o.checkName(head);
      return { kind: "branch", name: head, commitSha: refs.get("HEAD")!, refspec: `+refs/heads/${head}:refs/heads/${head}` };
    }
    const tag = refs.get(`refs/tags/${ref}^{}`) ?? refs.get(`refs/tags/${ref}`);
    if (tag) return { kind: "tag", name: ref, commitSha: tag, refspec: `+refs/tags/${ref}:refs/tags/${ref}` };
    const branch = refs.get(`refs/heads/${ref}`);
    if (branch) return { kind: "branch", name: ref, commitSha: branch, refspec: `+refs/heads/${ref}:refs/heads/${ref}` };
    throw new OpsError("FAILED", `gitRef ${JSON.stringify(ref)} is neither a branch nor a tag of ${req.url}`);
  }

  /** A new store: an empty bare repository beside, one fetch, renamed (a fetch cut short never looks like a store). */
  private async create(store: string, req: StoreSync, refspec: string): Promise<void> {
    await mkdir(this.o.dir, { recursive: true, mode: 0o700 });
    const temp = `${store}.tmp-${randomBytes(4).toString("hex")}`;
    try {
      await this.o.local(["init", "-q", "--bare", "--", temp], {});
      await this.fetch(temp, req, refspec, "clone");
      await rename(temp, store);
    } finally {
      await removeTree(temp);
    }
  }

  private async fetch(store: string, req: StoreSync, refspec: string, what: "clone" | "fetch" = "fetch"): Promise<void> {
    await this.o.network(what, ["fetch", "--depth", "1", "--no-tags", "--no-recurse-submodules", "--progress", "--", req.url, refspec], store, req.signal, req.progress);
  }

  private hasCommit(store: string, sha: string): Promise<boolean> {
    return this.o.local(["cat-file", "-e", `${sha}^{commit}`], { gitDir: store }).then(
      () => true,
      () => false,
    );
  }

  /** After a git dir was removed (deinstall, cleanup): drops what no app uses any more. */
  async release(url: string): Promise<void> {
    await this.maintain(this.pathOf(url));
  }

  /** Maintains every store: the orphan cleanup's pass over the object stores. */
  async maintainAll(): Promise<{ removed: number; kept: number }> {
    let removed = 0;
    let kept = 0;
    for (const entry of await readdir(this.o.dir).catch(() => [] as string[])) {
      const path = join(this.o.dir, entry);
      if (/\.tmp-[0-9a-f]+$/.test(entry)) {
        // a clone cut short by a crash; none runs now unless its lock is held
        if (!this.locks.has(path.replace(/\.tmp-[0-9a-f]+$/, ""))) await removeTree(path);
        continue;
      }
      if (!entry.endsWith(".git")) continue;
      if (await this.maintain(path)) kept++;
      else removed++;
    }
    return { removed, kept };
  }

  /** The git dirs that borrow from `store`. */
  async borrowers(store: string): Promise<string[]> {
    const out: string[] = [];
    const want = join(store, "objects");
    for (const entry of await readdir(this.o.gitDirs).catch(() => [] as string[])) {
      const gitDir = join(this.o.gitDirs, entry);
      const lines = await readFile(join(gitDir, "objects", "info", "alternates"), "utf8").catch(() => "");
      if (lines.split("\n").includes(want)) out.push(gitDir);
    }
    return out;
  }

  /** Pins what borrowers name, then repacks and prunes the rest; removes an unused store. True when kept. */
  private maintain(store: string): Promise<boolean> {
    return this.exclusive(store, async () => {
      if (!(await exists(store))) return false;
      const borrowers = await this.borrowers(store);
      if (!borrowers.length) {
        await removeTree(store);
        return false;
      }
      const keep = new Set<string>();
      for (const gitDir of borrowers) {
        const refs = await this.o.local(["for-each-ref", "--format=%(objectname)"], { gitDir }).catch(() => "");
        const orig = await readFile(join(gitDir, "ORIG_HEAD"), "utf8").catch(() => "");
        for (const sha of [...refs.split("\n"), orig].map((s) => s.trim())) if (SHA.test(sha)) keep.add(sha);
      }
      await removeTree(join(store, KEEP));
      await mkdir(join(store, KEEP), { recursive: true });
      for (const sha of keep) await writeFile(join(store, KEEP, sha), `${sha}\n`);
      // Loose keep refs (no gc, so no pack-refs): the next maintenance can drop them with the folder.
      await this.o.local(["repack", "-a", "-d", "-q"], { gitDir: store });
      await this.o.local(["prune", "--expire=now"], { gitDir: store });
      return true;
    });
  }

  /** An empty git dir for the app when it has none (made while the store fetches). */
  private async ensureGitDir(gitDir: string): Promise<void> {
    if (await exists(join(gitDir, "HEAD"))) return;
    await mkdir(dirname(gitDir), { recursive: true, mode: 0o700 });
    await this.o.local(["init", "-q", "--bare", "--", gitDir], {});
  }

  /** Borrows the store's objects and shallow list, and sets the app's tracking ref (what maintenance keeps). */
  private async link(gitDir: string, store: string, target: Synced): Promise<void> {
    const alternates = join(gitDir, "objects", "info", "alternates");
    const current = await readFile(alternates, "utf8").catch(() => "");
    const want = join(store, "objects");
    if (!current.split("\n").includes(want)) {
      await mkdir(dirname(alternates), { recursive: true });
      await writeFile(alternates, `${[...current.split("\n").filter(Boolean), want].join("\n")}\n`);
    }
    // The app's commit is a shallow one: its git dir must know where its history stops.
    const shallow = new Set([...(await lines(join(gitDir, "shallow"))), ...(await lines(join(store, "shallow")))]);
    if (shallow.size) await writeFile(join(gitDir, "shallow"), `${[...shallow].join("\n")}\n`);
    const refPath = target.kind === "branch" ? `refs/remotes/origin/${target.name}` : target.kind === "tag" ? `refs/tags/${target.name}` : "refs/dcc/pinned";
    const ref = join(gitDir, refPath);
    await mkdir(dirname(ref), { recursive: true });
    await writeFile(ref, `${target.commitSha}\n`);
  }

  /** One task at a time per store (deploys of two apps from one repository, maintenance). */
  private exclusive<T>(store: string, task: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(store) ?? Promise.resolve();
    const run = previous.then(task, task);
    const settled = run.catch(() => {});
    this.locks.set(store, settled);
    void settled.then(() => {
      if (this.locks.get(store) === settled) this.locks.delete(store);
    });
    return run;
  }
}

async function lines(path: string): Promise<string[]> {
  const text = await readFile(path, "utf8").catch(() => "");
  return text.split("\n").map((l) => l.trim()).filter((l) => SHA.test(l));
}

function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
