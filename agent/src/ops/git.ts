// git for app workspaces, every step through the agent's exec wrapper (clone and fetch killable
// with what they start). Objects come from the host's store (./git-store.ts): an app's git dir in
// the agent's state dir borrows them. Every run names the git dir (GIT_DIR) and the work tree
// (GIT_WORK_TREE) explicitly, so a
// `.git` file, hooks or config a container writes into /app are never read. Prompts are off,
// only http(s) may be spoken, no submodules, no system or user git config. The URL is checked
// again right before git sees it and always follows `--`.
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { repositorySchema } from "../contract/validation";
import type { Progress } from "../contract/reports";
import { OpsError, errorMessage, formatDuration } from "./errors";
import { ExecError, exec as realExec, type Exec } from "./exec";
import { GitStore, type GitProgress } from "./git-store";
import { removeGitPointer } from "./workspace";
import { commandGitCredential } from "./command-context";
import { gitAuthFailure, gitCredentialEnvironment } from "./git-credential";

export interface CloneRequest {
  url: string;
  gitDir: string;
  workTree: string;
  onProgress?: (p: Progress) => void;
  /** Aborting kills the git process (a deadline or a cancel). */
  signal?: AbortSignal;
}

export interface FetchRequest extends CloneRequest {
  branch: string;
}

export interface CheckoutRequest {
  gitDir: string;
  workTree: string;
  branch: string;
  /** Also delete untracked files (except `keepPaths`). */
  clean: boolean;
  keepPaths: string[];
  /** Check this commit out instead of the branch's fetched head (a rollback to the previous one). */
  commit?: string;
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
}

/** The git operations the app manager needs; tests may substitute their own. */
export interface GitOps {
  /** Shallow clone of the default branch into an empty work tree; returns its commit and branch. */
  clone(req: CloneRequest): Promise<{ commitSha: string; branch: string }>;
  /** Fetches the branch's newest commit into the git dir; the work tree is not touched. Answers that commit. */
  fetch(req: FetchRequest): Promise<{ commitSha: string }>;
  /** Resets the work tree to the fetched commit, keeping untracked files unless `clean`. */
  checkout(req: CheckoutRequest): Promise<{ commitSha: string }>;
  /** After an app's git dir was removed: the repository's objects no app uses any more go. */
  release?(url: string): Promise<void>;
  /** Every object store: unused ones removed, the rest pruned to what apps use. */
  maintain?(): Promise<{ removed: number; kept: number }>;
}

export interface GitOptions {
  /** Agent-owned empty folder used as HOME (and cwd) for git: no user config is read. */
  homeDir: string;
  allowInsecure: boolean;
  /** Kill git after this long without output (ms). */
  idleTimeoutMs?: number;
  /** Longest a clone or fetch may take in all (ms); default 1 h (DCC_CLONE_TIMEOUT_S). */
  cloneTimeoutMs?: number;
  /** `<stateDir>/stores`: the object stores; `<stateDir>/git`: the apps' git dirs that borrow from them. */
  storeDir: string;
  gitDirs: string;
  exec?: Exec;
}

/** A clone or fetch that ran past its time limit. */
export class GitTimeoutError extends OpsError {
  constructor(what: string, ms: number) {
    super("FAILED", `git ${what} timed out after ${formatDuration(ms)}`);
  }
}

const BRANCH = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$/;
const SHA = /^[0-9a-f]{40,64}$/;
const tracking = (branch: string) => `refs/remotes/origin/${branch}`;
const PROXY_VARS = ["http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"];

/**
 * Hooks could only come from our own git dir; pointing them at /dev/null is belt and braces. No
 * automatic gc: a store's own prune cannot see the refs of the git dirs that borrow its objects.
 */
const GIT_CONFIG = [
  "core.hooksPath=/dev/null",
  "submodule.recurse=false",
  "advice.detachedHead=false",
  "gc.auto=0",
  "maintenance.auto=false",
  // The hand-over chowns the work tree after every checkout: with git's full stat check the new
  // owner and ctime make every file look changed, and the next reset rewrites all of them (2.4 s
  // for 3,000 files here). Size, mode and mtime still tell a changed file.
  "core.checkStat=minimal",
  "core.trustctime=false",
];

export class SimpleGitOps implements GitOps {
  private readonly exec: Exec;
  private readonly store: GitStore;

  constructor(private readonly options: GitOptions) {
    this.exec = options.exec ?? realExec;
    this.store = new GitStore({
      dir: options.storeDir,
      gitDirs: options.gitDirs,
      local: (args, dirs, signal) => this.local(args, dirs, signal),
      network: (what, args, gitDir, signal, progress) => this.network(what, signal, gitDir, progress, args),
    });
  }

  async clone(req: CloneRequest): Promise<{ commitSha: string; branch: string }> {
    this.checkUrl(req.url);
    await mkdir(req.workTree, { recursive: true });
    await mkdir(dirname(req.gitDir), { recursive: true, mode: 0o700 });
    req.onProgress?.({ step: "clone", message: "cloning repository", pct: 0 });
    const { commitSha, branch } = await this.synced(req, null, req.onProgress && cloneProgress(req.onProgress));
    if (!BRANCH.test(branch)) throw new OpsError("FAILED", `the repository's default branch ${JSON.stringify(branch)} is not supported`);
    await removeGitPointer(req.workTree);
    await this.local(["reset", "-q", "--hard", "--no-recurse-submodules", commitSha, "--"], req, req.signal);
    await removeGitPointer(req.workTree);
    req.onProgress?.({ step: "clone", message: `cloned ${branch} at ${commitSha.slice(0, 12)}`, pct: 100 });
    return { commitSha, branch };
  }

  async fetch(req: FetchRequest): Promise<{ commitSha: string }> {
    this.checkUrl(req.url);
    if (!BRANCH.test(req.branch)) throw new OpsError("INVALID", `branch ${JSON.stringify(req.branch)} is not supported`);
    await mkdir(req.workTree, { recursive: true });
    await removeGitPointer(req.workTree);
    req.onProgress?.({ step: "fetch", message: `fetching ${req.branch}` });
    const { commitSha } = await this.synced(req, req.branch, req.onProgress && fetchProgress(req.onProgress));
    return { commitSha };
  }

  async checkout(req: CheckoutRequest): Promise<{ commitSha: string }> {
    if (!BRANCH.test(req.branch)) throw new OpsError("INVALID", `branch ${JSON.stringify(req.branch)} is not supported`);
    if (req.commit !== undefined && !SHA.test(req.commit)) throw new OpsError("INVALID", "commit must be a full SHA");
    await mkdir(req.workTree, { recursive: true });
    await removeGitPointer(req.workTree);
    req.onProgress?.({ step: "checkout", message: req.clean ? "updating the work tree and removing untracked files" : "updating the work tree (untracked files kept)" });
    await this.local(["reset", "-q", "--hard", "--no-recurse-submodules", req.commit ?? tracking(req.branch), "--"], req, req.signal);
    if (req.clean) {
      const keep = req.keepPaths.flatMap((p) => ["-e", `/${p}`]);
      await this.local(["clean", "-q", "-f", "-f", "-d", "-x", ...keep, "--"], req, req.signal);
    }
    await removeGitPointer(req.workTree);
    const commitSha = (await this.local(["rev-parse", "--verify", "HEAD^{commit}"], req)).trim();
    if (!SHA.test(commitSha)) throw new OpsError("FAILED", `git returned an unexpected commit id ${JSON.stringify(commitSha)}`);
    return { commitSha };
  }

  release(url: string): Promise<void> {
    return this.store.release(url);
  }

  maintain(): Promise<{ removed: number; kept: number }> {
    return this.store.maintainAll();
  }

  private synced(req: CloneRequest, branch: string | null, progress: GitProgress | undefined) {
    return this.store.sync({ url: req.url, gitDir: req.gitDir, branch, signal: req.signal, progress });
  }

  /**
   * Clone and fetch run through the agent's exec wrapper: its child sits in its own process group,
   * so a cancel, a deadline or the time limit kills git together with the `git-remote-http` it
   * started (which would otherwise keep waiting on a silent server).
   */
  private async network(what: string, signal: AbortSignal | undefined, gitDir: string | null, progress: GitProgress | undefined, args: string[]): Promise<string> {
    const ms = this.options.cloneTimeoutMs ?? 3_600_000;
    const idleMs = this.options.idleTimeoutMs ?? 300_000;
    const timeout = AbortSignal.timeout(ms);
    const idle = new AbortController();
    let idleTimer = setTimeout(() => idle.abort(), idleMs);
    const abort = AbortSignal.any([timeout, idle.signal, ...(signal ? [signal] : [])]);
    const credential = commandGitCredential();
    try {
      const result = await this.exec(["git", ...GIT_CONFIG.flatMap((c) => ["-c", c]), ...args], {
        env: { ...this.environment(gitDir ? { gitDir } : {}), ...gitCredentialEnvironment(credential) },
        cwd: this.options.homeDir,
        signal: abort,
        onLine: (line) => {
          clearTimeout(idleTimer);
          idleTimer = setTimeout(() => idle.abort(), idleMs);
          const m = /^(?:remote: )?(Counting|Compressing|Receiving|Resolving) objects:\s+(\d+)%/.exec(line);
          if (m && progress) progress(m[1]!.toLowerCase(), Number(m[2]));
        },
      });
      return result.stdout;
    } catch (err) {
      if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new OpsError("FAILED", `git ${what} was aborted`);
      if (timeout.aborted) throw new GitTimeoutError(what, ms);
      if (idle.signal.aborted) throw new OpsError("FAILED", `git ${what} stopped: no progress for ${formatDuration(idleMs)}`);
      const url = args.find((a) => /^https?:\/\//.test(a));
      const auth = err instanceof ExecError && url ? gitAuthFailure(err.output, url, credential !== undefined, err) : null;
      if (auth) throw auth;
      throw err;
    } finally {
      clearTimeout(idleTimer);
    }
  }

  /** Local steps (init, rev-parse, reset, clean, repack) with the same environment and config. */
  private async local(args: string[], dirs: { gitDir?: string; workTree?: string }, signal?: AbortSignal): Promise<string> {
    const result = await this.exec(["git", ...GIT_CONFIG.flatMap((c) => ["-c", c]), ...args], {
      env: this.environment(dirs),
      cwd: this.options.homeDir,
      signal,
      timeoutMs: this.options.idleTimeoutMs ?? 300_000,
    });
    return result.stdout;
  }

  private environment(dirs: { gitDir?: string; workTree?: string }): Record<string, string> {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
      HOME: this.options.homeDir,
      LANG: "C",
      LC_ALL: "C",
      GIT_TERMINAL_PROMPT: "0",
      GIT_ALLOW_PROTOCOL: this.options.allowInsecure ? "https:http" : "https",
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_CONFIG_GLOBAL: "/dev/null",
    };
    for (const key of PROXY_VARS) if (process.env[key]) env[key] = process.env[key]!;
    if (dirs.gitDir) env.GIT_DIR = dirs.gitDir;
    if (dirs.workTree) env.GIT_WORK_TREE = dirs.workTree;
    return env;
  }

  /** The URL is checked again right before git sees it, whatever validated it upstream. */
  private checkUrl(url: string): void {
    const checked = repositorySchema({ allowInsecure: this.options.allowInsecure }).safeParse(url);
    if (!checked.success) throw new OpsError("INVALID", `repository ${checked.error.issues[0]?.message ?? "is not valid"}`);
  }
}

function cloneProgress(report: (p: Progress) => void): (stage: string, pct: number) => void {
  // Map git's stages onto one 0–100 scale: counting/compressing, receiving, resolving.
  const span: Record<string, [number, number]> = {
    counting: [0, 5],
    compressing: [5, 10],
    receiving: [10, 90],
    resolving: [90, 99],
  };
  let last = -1;
  let at = 0;
  return (stage, progress) => {
    const [from, to] = span[stage] ?? [0, 0];
    if (to === 0) return;
    const pct = Math.round(from + ((to - from) * progress) / 100);
    if (pct <= last || Date.now() - at < GIT_REPORT_MS) return;
    last = pct;
    at = Date.now();
    report({ step: "clone", message: `${stage} objects`, pct });
  };
}

function fetchProgress(report: (p: Progress) => void): (stage: string, pct: number) => void {
  let last = -1;
  let at = 0;
  return (stage, progress) => {
    if (stage !== "receiving" || progress <= last || Date.now() - at < GIT_REPORT_MS) return;
    last = progress;
    at = Date.now();
    report({ step: "fetch", message: "receiving objects", pct: progress });
  };
}

/**
 * Least time between two git progress reports: each is a database write on the console, and a
 * large clone prints a hundred percent steps a second (their writes would queue before the result's).
 */
const GIT_REPORT_MS = 200;

/** Turns git's error into one line an operator can act on. */
export function gitFailure(err: unknown, url: string): OpsError {
  if (err instanceof OpsError) return err;
  const text = err instanceof ExecError ? err.output : errorMessage(err);
  const lines = text.split(/[\r\n]+/).map((l) => l.trim()).filter((l) => l && !/objects:\s+\d+%|^remote: (Enumerating|Total)/.test(l));
  const fatal = lines.filter((l) => /^(fatal|error|remote):/i.test(l)).join(" ") || lines.slice(-3).join(" ");
  let reason = fatal || "git failed";
  if (/No space left on device|unable to write file|unable to checkout working tree/i.test(text)) {
    // git names the file it could not write, not why: nearly always a full disk
    return new OpsError("FAILED", `git could not write the code of ${url}: no space left on the disk holding the workspace or the agent's state, or it is not writable (${fatal})`, { cause: err });
  }
  if (/could not read Username|Authentication failed|terminal prompts disabled/i.test(text)) {
    reason = "the repository asks for credentials (private or missing repository)";
  } else if (/repository '.*' not found|not found|404/i.test(text)) {
    reason = "the repository was not found";
  } else if (/Could not resolve host|Failed to connect|Connection refused|Connection timed out|unable to access/i.test(text)) {
    reason = `the repository host cannot be reached (${fatal})`;
  } else if (/transport '.*' not allowed/i.test(text)) {
    reason = "the repository's protocol is not allowed";
  }
  return new OpsError("FAILED", `git could not fetch ${url}: ${reason}`, { cause: err });
}
