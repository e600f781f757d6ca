// git for app workspaces, every step through the agent's exec wrapper (clone and fetch killable
// with what they start). Objects come from the host's store (./git-store.ts): an app's git dir in
// the agent's state dir borrows them. Every run names the git dir (GIT_DIR) and the work tree
// (GIT_WORK_TREE) explicitly, so a
// `.git` file, hooks or config a container writes into /app are never read. Prompts are off,
// only http(s) may be spoken, redirects are not followed, no system or user git config;
// submodules only when the app asks for them (./git-submodules.ts). The URL and ref are checked
// again right before git sees them, the host name is resolved and checked, and the URL always
// follows `--`; a ref only ever appears inside a refspec built here.
import { lookup } from "node:dns/promises";
import { mkdir } from "node:fs/promises";
import { isIP } from "node:net";
import { dirname } from "node:path";
import { gitRefProblem, resolvedAddressProblem } from "../contract/git-ref";
import { repositoryProblem } from "../contract/validation";
import type { Progress } from "../contract/reports";
import { OpsError, errorMessage, formatDuration } from "./errors";
import { ExecError, exec as realExec, type Exec } from "./exec";
import { GitStore, type GitProgress, type RefKind } from "./git-store";
import { Submodules } from "./git-submodules";
import { removeGitPointer } from "./workspace";
import { commandGitCredential } from "./command-context";
import type { GitCredential } from "../contract/app-config";
import { gitAuthFailure, gitCredentialEnvironment } from "./git-credential";

export interface CloneRequest {
  url: string;
  gitDir: string;
  workTree: string;
  /** Branch, tag or full commit SHA; null or absent: the remote's default branch. */
  ref?: string | null;
  /** Also fetch and check out the repository's submodules (one level, each URL checked). */
  submodules?: boolean;
  onProgress?: (p: Progress) => void;
  /** Aborting kills the git process (a deadline or a cancel). */
  signal?: AbortSignal;
}

export interface FetchRequest extends Omit<CloneRequest, "submodules"> {
  ref: string | null;
}

export interface CheckoutRequest {
  gitDir: string;
  workTree: string;
  /** The commit to bring the work tree to (a fetch's answer, or the previous one on a rollback). */
  commit: string;
  /** Also delete untracked files (except `keepPaths`). */
  clean: boolean;
  keepPaths: string[];
  /** The repository URL, when its submodules are to be fetched too (relative submodule URLs resolve against it). */
  submodulesOf?: string;
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
}

/** Where a ref led: the commit, and whether it is a branch (followed later), a tag or a commit (kept). */
export interface Fetched {
  commitSha: string;
  /** The branch or tag name; for a commit, the SHA. */
  branch: string;
  refKind: RefKind;
}

/** The git operations the app manager needs; tests may substitute their own. */
export interface GitOps {
  /** Shallow clone of the ref (default: the default branch) into an empty work tree; returns its commit and name. */
  clone(req: CloneRequest): Promise<Fetched>;
  /** Fetches the ref's newest commit (or the given SHA) unless the host has it; the work tree is not touched. */
  fetch(req: FetchRequest): Promise<Fetched>;
  /** Resets the work tree to the commit, keeping untracked files unless `clean`. */
  checkout(req: CheckoutRequest): Promise<{ commitSha: string }>;
  /** After an app's git dir was removed: the repository's objects no app uses any more go. */
  release?(url: string): Promise<void>;
  /** Every object store: unused ones removed, the rest pruned to what apps use. */
  maintain?(): Promise<{ removed: number; kept: number }>;
}

/** Resolves a host name to its addresses (the real DNS lookup unless a test hands its own). */
export type ResolveHost = (host: string) => Promise<string[]>;

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
  resolveHost?: ResolveHost;
}

/** A clone or fetch that ran past its time limit. */
export class GitTimeoutError extends OpsError {
  constructor(what: string, ms: number) {
    super("FAILED", `git ${what} timed out after ${formatDuration(ms)}`);
  }
}

const SHA = /^[0-9a-f]{40,64}$/;
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
  // A redirect could lead git to another host than the one checked (an internal address).
  "http.followRedirects=false",
];

export class SimpleGitOps implements GitOps {
  private readonly exec: Exec;
  private readonly store: GitStore;
  private readonly submodules: Submodules;
  /** Per host name: the addresses its last check resolved, pinned for git's connection (no second lookup to rebind). */
  private readonly pinned = new Map<string, string[]>();

  constructor(private readonly options: GitOptions) {
    this.exec = options.exec ?? realExec;
    this.store = new GitStore({
      dir: options.storeDir,
      gitDirs: options.gitDirs,
      local: (args, dirs, signal) => this.local(args, dirs, signal),
      network: (what, args, gitDir, signal, progress) => this.network(what, signal, gitDir, progress, args, commandGitCredential()),
      checkName: (name) => {
        const problem = gitRefProblem(name);
        if (problem) throw new OpsError("FAILED", `the repository's default branch ${JSON.stringify(name.slice(0, 200))} is not supported: it ${problem}`);
      },
    });
    this.submodules = new Submodules({
      rules: { allowInsecure: options.allowInsecure },
      local: (args, dirs, signal) => this.local(args, dirs, signal),
      // Submodules live on other repositories (often other hosts): the app's git credential is for
      // its own repository only, so they are always fetched without it.
      network: (what, args, gitDir, signal) => this.network(what, signal, gitDir, undefined, args, undefined),
      checkHost: (url) => this.checkUrl(url, null),
    });
  }

  async clone(req: CloneRequest): Promise<Fetched> {
    await this.checkUrl(req.url, req.ref);
    await mkdir(req.workTree, { recursive: true });
    await mkdir(dirname(req.gitDir), { recursive: true, mode: 0o700 });
    req.onProgress?.({ step: "clone", message: "cloning repository", pct: 0 });
    const fetched = await this.synced(req, req.onProgress && cloneProgress(req.onProgress));
    await removeGitPointer(req.workTree);
    await this.local(["reset", "-q", "--hard", "--no-recurse-submodules", fetched.commitSha, "--"], req, req.signal);
    await removeGitPointer(req.workTree);
    if (req.submodules) await this.submodules.update({ url: req.url, gitDir: req.gitDir, workTree: req.workTree, commit: fetched.commitSha, onProgress: req.onProgress, signal: req.signal });
    req.onProgress?.({ step: "clone", message: `cloned ${fetched.refKind === "commit" ? "commit" : `${fetched.refKind} ${fetched.branch}`} at ${fetched.commitSha.slice(0, 12)}`, pct: 100 });
    return fetched;
  }

  async fetch(req: FetchRequest): Promise<Fetched> {
    await this.checkUrl(req.url, req.ref);
    await mkdir(req.workTree, { recursive: true });
    await removeGitPointer(req.workTree);
    req.onProgress?.({ step: "fetch", message: req.ref ? `fetching ${req.ref}` : "fetching the default branch" });
    return this.synced(req, req.onProgress && fetchProgress(req.onProgress));
  }

  async checkout(req: CheckoutRequest): Promise<{ commitSha: string }> {
    if (!SHA.test(req.commit)) throw new OpsError("INVALID", "commit must be a full SHA");
    await mkdir(req.workTree, { recursive: true });
    await removeGitPointer(req.workTree);
    req.onProgress?.({ step: "checkout", message: req.clean ? "updating the work tree and removing untracked files" : "updating the work tree (untracked files kept)" });
    await this.local(["reset", "-q", "--hard", "--no-recurse-submodules", req.commit, "--"], req, req.signal);
    if (req.clean) {
      const keep = req.keepPaths.flatMap((p) => ["-e", `/${p}`]);
      await this.local(["clean", "-q", "-f", "-f", "-d", "-x", ...keep, "--"], req, req.signal);
    }
    await removeGitPointer(req.workTree);
    const commitSha = (await this.local(["rev-parse", "--verify", "HEAD^{commit}"], req)).trim();
    if (!SHA.test(commitSha)) throw new OpsError("FAILED", `git returned an unexpected commit id ${JSON.stringify(commitSha)}`);
    if (req.submodulesOf) await this.submodules.update({ url: req.submodulesOf, gitDir: req.gitDir, workTree: req.workTree, commit: commitSha, onProgress: req.onProgress, signal: req.signal });
    return { commitSha };
  }

  release(url: string): Promise<void> {
    return this.store.release(url);
  }

  maintain(): Promise<{ removed: number; kept: number }> {
    return this.store.maintainAll();
  }

  private async synced(req: CloneRequest, progress: GitProgress | undefined): Promise<Fetched> {
    const { commitSha, kind, name } = await this.store.sync({ url: req.url, gitDir: req.gitDir, ref: req.ref ?? null, signal: req.signal, progress });
    return { commitSha, branch: name, refKind: kind };
  }

  /**
   * Clone and fetch run through the agent's exec wrapper: its child sits in its own process group,
   * so a cancel, a deadline or the time limit kills git together with the `git-remote-http` it
   * started (which would otherwise keep waiting on a silent server).
   */
  private async network(
    what: string,
    signal: AbortSignal | undefined,
    gitDir: string | null,
    progress: GitProgress | undefined,
    args: string[],
    credential: GitCredential | undefined,
  ): Promise<string> {
    const ms = this.options.cloneTimeoutMs ?? 3_600_000;
    const idleMs = this.options.idleTimeoutMs ?? 300_000;
    const timeout = AbortSignal.timeout(ms);
    const idle = new AbortController();
    let idleTimer = setTimeout(() => idle.abort(), idleMs);
    const abort = AbortSignal.any([timeout, idle.signal, ...(signal ? [signal] : [])]);
    try {
      const result = await this.exec(["git", ...GIT_CONFIG.flatMap((c) => ["-c", c]), ...this.pins(args), ...args], {
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

  /**
   * The URL (and ref) are checked again right before git sees them, whatever validated them
   * upstream; then the host name is resolved, and refused when an address it resolves to is
   * link-local or a metadata service (or loopback/private without the insecure switch).
   */
  private async checkUrl(url: string, ref: string | null | undefined): Promise<void> {
    const rules = { allowInsecure: this.options.allowInsecure };
    const problem = repositoryProblem(url, rules);
    if (problem) throw new OpsError("INVALID", `repository ${problem}`);
    if (ref != null) {
      const refProblem = gitRefProblem(ref);
      if (refProblem) throw new OpsError("INVALID", `gitRef ${refProblem}`);
    }
    const host = new URL(url).hostname.replace(/^\[|\]$/g, "").toLowerCase();
    if (isIP(host)) return; // a literal address was checked with the URL
    const resolve = this.options.resolveHost ?? lookupAll;
    const addresses = await resolve(host).catch(() => null);
    // Unresolvable: git says so itself ("Could not resolve host"), in the words operators know.
    if (addresses === null) return;
    const refused = resolvedAddressProblem(host, addresses, rules);
    if (refused) throw new OpsError("INVALID", `repository ${url} refused: ${refused}`);
    this.pinned.set(host, addresses);
  }

  /**
   * `http.curloptResolve` for the URLs in a network command: git connects to the addresses the
   * check saw, so a name cannot resolve to a safe address for the check and another for git.
   */
  private pins(args: string[]): string[] {
    const out: string[] = [];
    for (const arg of args) {
      if (!/^https?:\/\//.test(arg)) continue;
      let url: URL;
      try {
        url = new URL(arg);
      } catch {
        continue;
      }
      const addresses = this.pinned.get(url.hostname.toLowerCase());
      if (!addresses?.length) continue;
      const port = url.port || (url.protocol === "https:" ? "443" : "80");
      const list = addresses.map((a) => (isIP(a) === 6 ? `[${a}]` : a)).join(",");
      out.push("-c", `http.curloptResolve=${url.hostname.toLowerCase()}:${port}:${list}`);
    }
    return out;
  }
}

async function lookupAll(host: string): Promise<string[]> {
  const answers = await lookup(host, { all: true, verbatim: true });
  return answers.map((a) => a.address);
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
  if (/returned error: 30[1278]/i.test(text)) {
    reason = "the repository answers with a redirect, which is not followed (give the URL it redirects to)";
  } else if (/could not read Username|Authentication failed|terminal prompts disabled/i.test(text)) {
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
