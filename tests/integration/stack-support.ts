// Shared pieces of the console-level lifecycle and attack suites: a console with a real agent on
// the real Docker engine and a loopback git server, a gate in front of that git server that can
// hold connections (to keep an agent's git run in flight), and waits that wake on apps.events.
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { createServer, connect, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import { TEST_IMAGE, dockerAvailable, removeByLabel } from "../support/docker";
import { startConsole, type RunningConsole } from "../support/console";
import type { AppDto } from "../../app/services/apps.server";
import { startGitServer, type GitServer } from "../support/git-server";
import { openSse, type SseReader } from "../support/sse";
import { startAgent, type RunningAgent } from "./agents";

/** The flat app object of the API, as the console defines it. */
export type AppItem = AppDto;

export interface ActionReply {
  app: AppItem | null;
  commandId: string | null;
  queued: boolean;
}

/** A TCP gate: passes connections through to `target`, or holds new ones (unanswered) while held. */
export class Gate {
  private server!: Server;
  private readonly waiting: Socket[] = [];
  private readonly live = new Set<Socket>();
  private held = false;
  port = 0;

  constructor(private readonly target: number) {}

  async start(): Promise<void> {
    this.server = createServer((s) => (this.held ? this.waiting.push(s) : this.pipe(s)));
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", () => r()));
    this.port = (this.server.address() as { port: number }).port;
  }

  /** Connections held right now (a git run waiting at the gate). */
  get holding(): number {
    return this.waiting.length;
  }

  hold(): void {
    this.held = true;
  }

  release(): void {
    this.held = false;
    for (const s of this.waiting.splice(0)) this.pipe(s);
  }

  private pipe(client: Socket): void {
    const upstream = connect(this.target, "127.0.0.1");
    this.live.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      this.live.delete(client);
      this.live.delete(upstream);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.pipe(upstream).pipe(client);
  }

  async close(): Promise<void> {
    for (const s of [...this.waiting.splice(0), ...this.live]) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}

export interface Stack {
  c: RunningConsole;
  git: GitServer;
  gate: Gate;
  agent: RunningAgent;
  hostId: string;
  consoleUrl: string;
  /** The agent's workspace root: each app's workspace is `<root>/<name>`. */
  workspaceRoot: string;
  agentEnv: Record<string, string>;
  /** A repository URL that goes through the gate. */
  repoUrl(name: string): string;
  /** Starts the agent again on the same state dir (after `agent.stop()`). */
  restartAgent(): Promise<RunningAgent>;
  close(): Promise<void>;
}

/**
 * Console (insecure git allowed, busybox base image) + one real enrolled agent, connected.
 * `env` is given to both processes (e.g. a secret that must never reach a container).
 */
export async function startStack(env: Record<string, string> = {}): Promise<Stack> {
  if (!(await dockerAvailable())) throw new Error("no Docker engine: run `bash scripts/test-deps.sh` first");
  const git = await startGitServer();
  const gate = new Gate(Number(new URL(git.url).port));
  await gate.start();
  const c = await startConsole({ env: { DCC_ALLOW_INSECURE_GIT: "1", DCC_BASE_IMAGE: TEST_IMAGE, ...env } });
  const e = (await c.mutate<{ token: string; consoleUrl: string }>("hosts.createEnrollment", {})).body.result!.data;
  const stateDir = join(await mkdtemp(join(tmpdir(), "dcc-life-agent-")), "state");
  const agentArgs = ["--allow-insecure-git"];
  let agent = await startAgent({ consoleUrl: e.consoleUrl, token: e.token, stateDir, args: agentArgs, env });
  const hostId = String((await agent.waitForLog("enrolled")).hostId);
  await agent.waitForLog("connected");
  const stack: Stack = {
    c,
    git,
    gate,
    get agent() {
      return agent;
    },
    hostId,
    consoleUrl: e.consoleUrl,
    workspaceRoot: join(stateDir, "..", "workspaces"),
    agentEnv: env,
    repoUrl: (name) => `http://127.0.0.1:${gate.port}/${name}.git`,
    async restartAgent() {
      agent = await startAgent({ consoleUrl: e.consoleUrl, stateDir, args: agentArgs, env });
      await agent.waitForLog("connected");
      return agent;
    },
    async close() {
      await agent.stop(true).catch(() => {});
      await removeByLabel(`dcc.host=${hostId}`).catch(() => {});
      await c.dispose().catch(() => {});
      gate.release();
      await gate.close().catch(() => {});
      await git.close().catch(() => {});
      await rm(join(stateDir, ".."), { recursive: true, force: true });
    },
  };
  return stack;
}

/** Folders under the workspace root (an absent root counts as empty). */
export async function workspaceDirs(root: string): Promise<string[]> {
  return (await readdir(root).catch(() => [] as string[])).sort();
}

/**
 * Live view of one app (or all apps): every wait re-reads the truth (`check`) and sleeps until the
 * next apps.events message (at most `wakeMs`), so nothing is missed between a check and a wait.
 */
export class AppWatch {
  readonly messages: Record<string, unknown>[] = [];
  private constructor(private readonly sse: SseReader) {}

  static async open(c: RunningConsole, app?: string): Promise<AppWatch> {
    const input = app ? `?input=${encodeURIComponent(JSON.stringify({ app }))}` : "";
    const sse = await openSse(`${c.url}/api/trpc/apps.events${input}`, c.authHeaders);
    await sse.next((e) => e.event === "connected", 10_000);
    return new AppWatch(sse);
  }

  /** Messages of `type` seen so far (consumed by waits). */
  of(type: string): Record<string, unknown>[] {
    return this.messages.filter((m) => m.type === type);
  }

  async until<T>(what: string, check: () => Promise<T | false | null | undefined>, timeoutMs = 60_000, wakeMs = 1000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      try {
        const v = await check();
        if (v) return v;
      } catch (e) {
        last = e;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
      try {
        const e = await this.sse.next(() => true, Math.min(wakeMs, left));
        if (e.event === "message" && e.data) this.messages.push(JSON.parse(e.data) as Record<string, unknown>);
      } catch {
        // no event within wakeMs: check again anyway
      }
    }
  }

  /** The first message (seen already, or arriving within `timeoutMs`) that matches. */
  async message(match: (m: Record<string, unknown>) => boolean, from = 0, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.messages.slice(from).find(match);
      if (hit) return hit;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching apps.events message; seen: ${JSON.stringify(this.messages.slice(from)).slice(0, 2000)}`);
      try {
        const e = await this.sse.next(() => true, left);
        if (e.event === "message" && e.data) this.messages.push(JSON.parse(e.data) as Record<string, unknown>);
      } catch {
        // timed out: the loop reports it
      }
    }
  }

  close(): void {
    this.sse.close();
  }
}

/**
 * A stack and a watch on one app's events for a whole test file, closed after its last test. Call
 * it at the file's top level: `const { s, watch } = await stackWatching("my-app");`.
 */
export async function stackWatching(app: string, env: Record<string, string> = {}): Promise<{ s: Stack; watch: AppWatch }> {
  const s = await startStack(env);
  const watch = await AppWatch.open(s.c, app);
  afterAll(async () => {
    watch.close();
    await s.close();
  });
  return { s, watch };
}
