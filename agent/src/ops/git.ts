// git for app workspaces, through simple-git. The repository's git directory lives in the agent's
// state dir; every run names it (GIT_DIR) and the work tree (GIT_WORK_TREE) explicitly, so a
// `.git` file, hooks or config a container writes into /app are never read. Prompts are off,
// only http(s) may be spoken, no submodules, no system or user git config.
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { simpleGit, type SimpleGit, type SimpleGitProgressEvent } from "simple-git";
import { repositorySchema } from "../contract/validation";
import type { Progress } from "../contract/reports";
import { OpsError, errorMessage } from "./errors";
import { removeGitPointer } from "./workspace";

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
  /** Fetches the branch's newest commit into the git dir; the work tree is not touched. */
  fetch(req: FetchRequest): Promise<void>;
  /** Resets the work tree to the fetched commit, keeping untracked files unless `clean`. */
  checkout(req: CheckoutRequest): Promise<{ commitSha: string }>;
}

export interface GitOptions {
  /** Agent-owned empty folder used as HOME (and cwd) for git: no user config is read. */
  homeDir: string;
  allowInsecure: boolean;
  /** Kill git after this long without output (ms). */
  idleTimeoutMs?: number;
  /** Longest a clone or fetch may take in all (ms); default 1 h (DCC_CLONE_TIMEOUT_S). */
  cloneTimeoutMs?: number;
}

/** A clone or fetch that ran past its time limit. */
export class GitTimeoutError extends OpsError {
  constructor(what: string, ms: number) {
    super("FAILED", `git ${what} timed out after ${Math.round(ms / 1000)} s`);
  }
}

const BRANCH = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$/;
const SHA = /^[0-9a-f]{40,64}$/;
const tracking = (branch: string) => `refs/remotes/origin/${branch}`;
const PROXY_VARS = ["http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"];

export class SimpleGitOps implements GitOps {
  constructor(private readonly options: GitOptions) {}

  async clone(req: CloneRequest): Promise<{ commitSha: string; branch: string }> {
    this.checkUrl(req.url);
    await mkdir(dirname(req.gitDir), { recursive: true, mode: 0o700 });
    req.onProgress?.({ step: "clone", message: "cloning repository", pct: 0 });
    await this.limited("clone", req.signal, (abort) => this.git(null, req.onProgress && cloneProgress(req.onProgress), abort).clone(req.url, req.workTree, [
      "--depth",
      "1",
      "--single-branch",
      "--no-tags",
      "--no-recurse-submodules",
      `--separate-git-dir=${req.gitDir}`,
      // Named here so simple-git's progress plugin does not append it after the `--`.
      "--progress",
      "--",
    ]));
    // clone leaves a `.git` pointer file in the work tree; we never use it, and the container must
    // not find one it could redirect.
    await removeGitPointer(req.workTree);
    const git = this.git(req);
    const commitSha = (await git.raw(["rev-parse", "--verify", "HEAD^{commit}"])).trim();
    const branch = (await git.raw(["symbolic-ref", "--short", "HEAD"])).trim();
    if (!SHA.test(commitSha)) throw new OpsError("FAILED", `git returned an unexpected commit id ${JSON.stringify(commitSha)}`);
    if (!BRANCH.test(branch)) throw new OpsError("FAILED", `the repository's default branch ${JSON.stringify(branch)} is not supported`);
    req.onProgress?.({ step: "clone", message: `cloned ${branch} at ${commitSha.slice(0, 12)}`, pct: 100 });
    return { commitSha, branch };
  }

  async fetch(req: FetchRequest): Promise<void> {
    this.checkUrl(req.url);
    if (!BRANCH.test(req.branch)) throw new OpsError("INVALID", `branch ${JSON.stringify(req.branch)} is not supported`);
    await mkdir(req.workTree, { recursive: true });
    await removeGitPointer(req.workTree);
    req.onProgress?.({ step: "fetch", message: `fetching ${req.branch}` });
    await this.limited("fetch", req.signal, (abort) =>
      this.git(req, req.onProgress && fetchProgress(req.onProgress), abort).raw([
        "fetch", "--depth", "1", "--no-tags", "--no-recurse-submodules", "--progress", "--", req.url, `+refs/heads/${req.branch}:${tracking(req.branch)}`,
      ]),
    );
  }

  async checkout(req: CheckoutRequest): Promise<{ commitSha: string }> {
    if (!BRANCH.test(req.branch)) throw new OpsError("INVALID", `branch ${JSON.stringify(req.branch)} is not supported`);
    if (req.commit !== undefined && !SHA.test(req.commit)) throw new OpsError("INVALID", "commit must be a full SHA");
    await mkdir(req.workTree, { recursive: true });
    await removeGitPointer(req.workTree);
    req.onProgress?.({ step: "checkout", message: req.clean ? "updating the work tree and removing untracked files" : "updating the work tree (untracked files kept)" });
    const git = this.git(req, undefined, req.signal);
    await git.raw(["reset", "--hard", "--no-recurse-submodules", req.commit ?? tracking(req.branch), "--"]);
    if (req.clean) {
      const keep = req.keepPaths.flatMap((p) => ["-e", `/${p}`]);
      await git.raw(["clean", "-f", "-f", "-d", "-x", ...keep, "--"]);
    }
    await removeGitPointer(req.workTree);
    const commitSha = (await git.raw(["rev-parse", "--verify", "HEAD^{commit}"])).trim();
    if (!SHA.test(commitSha)) throw new OpsError("FAILED", `git returned an unexpected commit id ${JSON.stringify(commitSha)}`);
    return { commitSha };
  }

  /** Runs a network step under the caller's signal and the clone time limit; says which ended it. */
  private async limited<T>(what: string, signal: AbortSignal | undefined, run: (abort: AbortSignal) => Promise<T>): Promise<T> {
    const ms = this.options.cloneTimeoutMs ?? 3_600_000;
    const timeout = AbortSignal.timeout(ms);
    const abort = signal ? AbortSignal.any([signal, timeout]) : timeout;
    try {
      return await run(abort);
    } catch (err) {
      if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new OpsError("FAILED", `git ${what} was aborted`);
      if (timeout.aborted) throw new GitTimeoutError(what, ms);
      throw err;
    }
  }

  /** The URL is checked again right before git sees it, whatever validated it upstream. */
  private checkUrl(url: string): void {
    const checked = repositorySchema({ allowInsecure: this.options.allowInsecure }).safeParse(url);
    if (!checked.success) throw new OpsError("INVALID", `repository ${checked.error.issues[0]?.message ?? "is not valid"}`);
  }

  private git(dirs: { gitDir: string; workTree: string } | null, progress?: (e: SimpleGitProgressEvent) => void, abort?: AbortSignal): SimpleGit {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
      HOME: this.options.homeDir,
      LANG: "C",
      LC_ALL: "C",
      GIT_TERMINAL_PROMPT: "0",
      GIT_ALLOW_PROTOCOL: this.options.allowInsecure ? "https:http" : "https",
      GIT_CONFIG_NOSYSTEM: "1",
    };
    for (const key of PROXY_VARS) if (process.env[key]) env[key] = process.env[key]!;
    if (dirs) {
      env.GIT_DIR = dirs.gitDir;
      env.GIT_WORK_TREE = dirs.workTree;
    }
    return simpleGit({
      baseDir: this.options.homeDir,
      binary: "git",
      maxConcurrentProcesses: 4,
      completion: { onClose: true, onExit: false },
      timeout: { block: this.options.idleTimeoutMs ?? 300_000 },
      // Hooks could only come from our own git dir; pointing them at /dev/null is belt and braces.
      config: ["core.hooksPath=/dev/null", "submodule.recurse=false", "advice.detachedHead=false"],
      unsafe: { allowUnsafeHooksPath: true },
      allowEnvironment: ["GIT_TERMINAL_PROMPT", "GIT_ALLOW_PROTOCOL", "GIT_CONFIG_NOSYSTEM", "GIT_DIR", "GIT_WORK_TREE"],
      ...(progress ? { progress } : {}),
      ...(abort ? { abort } : {}),
    }).env(env);
  }
}

function cloneProgress(report: (p: Progress) => void): (e: SimpleGitProgressEvent) => void {
  // Map git's stages onto one 0–100 scale: counting/compressing, receiving, resolving.
  const span: Record<string, [number, number]> = {
    counting: [0, 5],
    compressing: [5, 10],
    receiving: [10, 90],
    resolving: [90, 99],
  };
  let last = -1;
  return (e) => {
    const [from, to] = span[e.stage] ?? [0, 0];
    if (to === 0) return;
    const pct = Math.round(from + ((to - from) * e.progress) / 100);
    if (pct <= last) return;
    last = pct;
    report({ step: "clone", message: `${e.stage} objects`, pct });
  };
}

function fetchProgress(report: (p: Progress) => void): (e: SimpleGitProgressEvent) => void {
  let last = -1;
  return (e) => {
    if (e.stage !== "receiving" || e.progress <= last) return;
    last = e.progress;
    report({ step: "fetch", message: "receiving objects", pct: e.progress });
  };
}

/** Turns simple-git's error into one line an operator can act on. */
export function gitFailure(err: unknown, url: string): OpsError {
  if (err instanceof OpsError) return err;
  const text = errorMessage(err);
  const lines = text.split("\n").map((l) => l.trim()).filter(Boolean);
  const fatal = lines.filter((l) => /^(fatal|error|remote):/i.test(l)).join(" ") || lines.slice(-3).join(" ");
  let reason = fatal || "git failed";
  if (/No space left on device/i.test(text)) {
    return new OpsError("FAILED", `git could not fetch ${url}: no space left on device (the disk holding the workspace or the agent's state is full)`, { cause: err });
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
