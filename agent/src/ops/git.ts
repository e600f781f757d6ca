// git for app workspaces: clone and fetch through the agent's exec wrapper (killable with what they
// start), local steps through simple-git. The repository's git directory lives in the agent's
// state dir; every run names it (GIT_DIR) and the work tree (GIT_WORK_TREE) explicitly, so a
// `.git` file, hooks or config a container writes into /app are never read. Prompts are off,
// only http(s) may be spoken, no submodules, no system or user git config. The URL is checked
// again right before git sees it and always follows `--`.
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { simpleGit, type SimpleGit } from "simple-git";
import { repositorySchema } from "../contract/validation";
import type { Progress } from "../contract/reports";
import { OpsError, errorMessage, formatDuration } from "./errors";
import { ExecError, exec as realExec, type Exec } from "./exec";
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

/** Hooks could only come from our own git dir; pointing them at /dev/null is belt and braces. */
const GIT_CONFIG = ["core.hooksPath=/dev/null", "submodule.recurse=false", "advice.detachedHead=false"];

export class SimpleGitOps implements GitOps {
  private readonly exec: Exec;

  constructor(private readonly options: GitOptions) {
    this.exec = options.exec ?? realExec;
  }

  async clone(req: CloneRequest): Promise<{ commitSha: string; branch: string }> {
    this.checkUrl(req.url);
    await mkdir(dirname(req.gitDir), { recursive: true, mode: 0o700 });
    req.onProgress?.({ step: "clone", message: "cloning repository", pct: 0 });
    const progress = req.onProgress && cloneProgress(req.onProgress);
    await this.network("clone", req.signal, null, progress, [
      "clone",
      "--depth",
      "1",
      "--single-branch",
      "--no-tags",
      "--no-recurse-submodules",
      `--separate-git-dir=${req.gitDir}`,
      "--progress",
      "--",
      req.url,
      req.workTree,
    ]);
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
    const progress = req.onProgress && fetchProgress(req.onProgress);
    await this.network("fetch", req.signal, req, progress, [
      "fetch", "--depth", "1", "--no-tags", "--no-recurse-submodules", "--progress", "--", req.url, `+refs/heads/${req.branch}:${tracking(req.branch)}`,
    ]);
  }

  async checkout(req: CheckoutRequest): Promise<{ commitSha: string }> {
    if (!BRANCH.test(req.branch)) throw new OpsError("INVALID", `branch ${JSON.stringify(req.branch)} is not supported`);
    if (req.commit !== undefined && !SHA.test(req.commit)) throw new OpsError("INVALID", "commit must be a full SHA");
    await mkdir(req.workTree, { recursive: true });
    await removeGitPointer(req.workTree);
    req.onProgress?.({ step: "checkout", message: req.clean ? "updating the work tree and removing untracked files" : "updating the work tree (untracked files kept)" });
    const git = this.git(req, req.signal);
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

  /**
   * Clone and fetch run through the agent's exec wrapper, not simple-git: its child sits in its own
   * process group, so a cancel, a deadline or the time limit kills git together with the
   * `git-remote-http` it started (which would otherwise keep waiting on a silent server).
   */
  private async network(
    what: string,
    signal: AbortSignal | undefined,
    dirs: { gitDir: string; workTree: string } | null,
    progress: ((stage: string, pct: number) => void) | undefined,
    args: string[],
  ): Promise<void> {
    const ms = this.options.cloneTimeoutMs ?? 3_600_000;
    const idleMs = this.options.idleTimeoutMs ?? 300_000;
    const timeout = AbortSignal.timeout(ms);
    const idle = new AbortController();
    let idleTimer = setTimeout(() => idle.abort(), idleMs);
    const abort = AbortSignal.any([timeout, idle.signal, ...(signal ? [signal] : [])]);
    try {
      await this.exec(["git", ...GIT_CONFIG.flatMap((c) => ["-c", c]), ...args], {
        env: this.environment(dirs),
        cwd: this.options.homeDir,
        signal: abort,
        onLine: (line) => {
          clearTimeout(idleTimer);
          idleTimer = setTimeout(() => idle.abort(), idleMs);
          const m = /^(?:remote: )?(Counting|Compressing|Receiving|Resolving) objects:\s+(\d+)%/.exec(line);
          if (m && progress) progress(m[1]!.toLowerCase(), Number(m[2]));
        },
      });
    } catch (err) {
      if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new OpsError("FAILED", `git ${what} was aborted`);
      if (timeout.aborted) throw new GitTimeoutError(what, ms);
      if (idle.signal.aborted) throw new OpsError("FAILED", `git ${what} stopped: no progress for ${formatDuration(idleMs)}`);
      throw err;
    } finally {
      clearTimeout(idleTimer);
    }
  }

  private environment(dirs: { gitDir: string; workTree: string } | null): Record<string, string> {
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
    if (dirs) {
      env.GIT_DIR = dirs.gitDir;
      env.GIT_WORK_TREE = dirs.workTree;
    }
    return env;
  }

  /** The URL is checked again right before git sees it, whatever validated it upstream. */
  private checkUrl(url: string): void {
    const checked = repositorySchema({ allowInsecure: this.options.allowInsecure }).safeParse(url);
    if (!checked.success) throw new OpsError("INVALID", `repository ${checked.error.issues[0]?.message ?? "is not valid"}`);
  }

  /** Local git steps (rev-parse, reset, clean) through simple-git, with the same environment. */
  private git(dirs: { gitDir: string; workTree: string } | null, abort?: AbortSignal): SimpleGit {
    const { GIT_CONFIG_GLOBAL: _global, ...env } = this.environment(dirs);
    return simpleGit({
      baseDir: this.options.homeDir,
      binary: "git",
      maxConcurrentProcesses: 4,
      completion: { onClose: true, onExit: false },
      timeout: { block: this.options.idleTimeoutMs ?? 300_000 },
      // Hooks could only come from our own git dir; pointing them at /dev/null is belt and braces.
      config: GIT_CONFIG,
      unsafe: { allowUnsafeHooksPath: true },
      allowEnvironment: ["GIT_TERMINAL_PROMPT", "GIT_ALLOW_PROTOCOL", "GIT_CONFIG_NOSYSTEM", "GIT_DIR", "GIT_WORK_TREE"],
      ...(abort ? { abort } : {}),
    }).env(env);
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
  return (stage, progress) => {
    const [from, to] = span[stage] ?? [0, 0];
    if (to === 0) return;
    const pct = Math.round(from + ((to - from) * progress) / 100);
    if (pct <= last) return;
    last = pct;
    report({ step: "clone", message: `${stage} objects`, pct });
  };
}

function fetchProgress(report: (p: Progress) => void): (stage: string, pct: number) => void {
  let last = -1;
  return (stage, progress) => {
    if (stage !== "receiving" || progress <= last) return;
    last = progress;
    report({ step: "fetch", message: "receiving objects", pct: progress });
  };
}

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
