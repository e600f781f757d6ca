// Shared setup of the ops integration tests: a loopback smart-HTTP git server, a temp workspace
// root and state dir, the real ops layer with its own host id (so cleanup by label touches only
// this test's containers and networks) behind the agent's dispatcher and per-app queue, and
// helpers to run commands and wait for status reports.
import { execFile } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { Progress, StatusReport, UsageSample } from "../../agent/src/contract/reports";
import { actionParamsSchema, NO_APP_CONFIG, type DeploySpec, type AppAction } from "../../agent/src/contract/spec";
import { Dispatcher, type Outcome, type ValidCommand } from "../../agent/src/dispatch";
import { Ops, type OpsOptions } from "../../agent/src/ops/ops";
import { AppQueue } from "../../agent/src/queue";
import { TEST_IMAGE, dockerAvailable, removeByLabel, waitFor } from "../support/docker";
import { startGitServer, type GitServer } from "../support/git-server";

const execFileAsync = promisify(execFile);

export interface OpsFixture {
  git: GitServer;
  base: string;
  root: string;
  stateDir: string;
  hostId: string;
  ops: Ops;
  dispatcher: Dispatcher;
  reports: StatusReport[];
  usage: UsageSample[];
  spec(name: string, repository: string, port: number, overrides?: Partial<DeploySpec>): DeploySpec;
  /** Runs an action as the agent does (dispatcher → queue → action) and answers its outcome. */
  run(app: string, action: AppAction | "cancel", params: Record<string, unknown>, opts?: RunOptions): Promise<Outcome>;
  /** Like run, but resolves with the result and rejects with the error (its `observed` attached). */
  apply(app: string, action: AppAction, params: Record<string, unknown>, onProgress?: (p: Progress) => void): Promise<Record<string, unknown>>;
  /** Resolves with the first report for `app` after index `from` that matches. */
  waitForStatus(app: string, match: (r: StatusReport) => boolean, opts?: { from?: number; timeoutMs?: number }): Promise<StatusReport>;
  close(): Promise<void>;
}

export interface RunOptions {
  id?: string;
  onProgress?: (p: Progress) => void;
  deadlineAt?: string;
  issuedAt?: string;
}

export class CommandFailed extends Error {
  constructor(
    message: string,
    readonly observed: StatusReport | undefined,
  ) {
    super(message);
  }
}

export const uniqueName = (prefix: string) => `${prefix}-${randomBytes(3).toString("hex")}`;

/** A deploy spec for a busybox httpd serving the app's workspace on `port`. */
export function testSpec(name: string, repository: string, port: number, overrides: Partial<DeploySpec> = {}): DeploySpec {
  return {
    appId: `id-${name}`,
    name,
    repository,
    startCommand: "httpd -f -p $PORT -h /app",
    installCommand: null,
    port,
    image: TEST_IMAGE,
    gpuDevices: [],
    capAdd: [],
    ...NO_APP_CONFIG,
    keepPaths: [],
    ...overrides,
  };
}

export async function opsFixture(options: Partial<OpsOptions> = {}): Promise<OpsFixture> {
  if (!(await dockerAvailable())) throw new Error("no Docker engine: run `bash scripts/test-deps.sh` first");
  const git = await startGitServer();
  const base = await mkdtemp(join(tmpdir(), "dcc-ops-"));
  const root = join(base, "root");
  const stateDir = join(base, "state");
  const hostId = `test-${randomBytes(4).toString("hex")}`;
  const reports: StatusReport[] = [];
  const usage: UsageSample[] = [];
  const queue = new AppQueue();
  const ops = await Ops.create({
    workspaceRoot: root,
    stateDir,
    hostId,
    allowInsecureGit: true,
    exclusive: (app, task) => queue.exclusive(app, task),
    log: () => {},
    usageIntervalMs: 1000,
    ...options,
  });
  const dispatcher = new Dispatcher({ hostId, ops: async () => ops, unavailable: () => "no ops", queue, log: () => {} });
  const unwatch = ops.watch((r) => reports.push(r), (u) => usage.push(u));
  const schemas = actionParamsSchema({ allowInsecure: true });
  const run = (app: string, action: AppAction | "cancel", params: Record<string, unknown>, opts: RunOptions = {}) => {
    // Parsed as the command gate does (defaults applied); the actions themselves do not validate.
    const parsed = action === "cancel" ? params : schemas[action].parse(params);
    const cmd = { id: opts.id ?? randomUUID(), action, app, params: parsed, issuedAt: opts.issuedAt, deadlineAt: opts.deadlineAt } as ValidCommand;
    return dispatcher.run(cmd, opts.onProgress ?? (() => {}));
  };
  return {
    git,
    base,
    root,
    stateDir,
    hostId,
    ops,
    dispatcher,
    reports,
    usage,
    spec: testSpec,
    run,
    async apply(app, action, params, onProgress) {
      const out = await run(app, action, params, { onProgress });
      if (!out.ok) throw new CommandFailed(out.error ?? "failed", out.observed);
      return out.result ?? {};
    },
    waitForStatus: (app, match, { from = 0, timeoutMs = 15_000 } = {}) =>
      waitFor(() => reports.slice(from).find((r) => r.app === app && match(r)), { timeoutMs, intervalMs: 20, message: `status of ${app}` }),
    async close() {
      unwatch();
      ops.close();
      await removeByLabel(`dcc.host=${hostId}`);
      await git.close();
      await rm(base, { recursive: true, force: true });
    },
  };
}

/** Fetches a page from the app's published port; rejects when it does not answer 200. */
export async function fetchText(port: number, path = "/index.html"): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(2000) });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return res.text();
}

export function progressRecorder(): { progress: Progress[]; onProgress: (p: Progress) => void } {
  const progress: Progress[] = [];
  return { progress, onProgress: (p) => progress.push(p) };
}

/** Adds a symlink to the repo in a new commit (the git server's helper writes only files). */
export async function commitSymlink(git: GitServer, repo: string, linkPath: string, target: string): Promise<string> {
  const work = await mkdtemp(join(tmpdir(), "dcc-link-"));
  const env = { NODE_ENV: "test", PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: work, GIT_CONFIG_NOSYSTEM: "1", GIT_TERMINAL_PROMPT: "0" } as NodeJS.ProcessEnv;
  const run = (args: string[], cwd?: string) => execFileAsync("git", args, { cwd, env });
  await run(["clone", "-q", join(git.root, `${repo}.git`), work + "/w"]);
  await symlink(target, join(work, "w", linkPath));
  await run(["add", linkPath], work + "/w");
  await run(["-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "link"], work + "/w");
  await run(["push", "-q", "origin", "HEAD:refs/heads/main"], work + "/w");
  const { stdout } = await run(["rev-parse", "HEAD"], work + "/w");
  await rm(work, { recursive: true, force: true });
  return stdout.trim();
}

export { TEST_IMAGE };
