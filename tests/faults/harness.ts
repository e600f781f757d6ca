// The fault matrix's stage: the built console, one real agent dialling it through a proxy the
// test controls (the link), fixture repositories over smart HTTP behind another proxy (the
// forge: refuse, hold, trickle), the real Docker engine. Restarts of agent and console keep their
// state dirs and ports, so a scenario can kill any process and bring it back.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TEST_IMAGE, dockerAvailable, removeByLabel } from "../support/docker";
import { startConsole, type RunningConsole } from "../support/console";
import { FaultProxy } from "../support/fault-proxy";
import { startGitServer, type GitServer } from "../support/git-server";
import { startAgent, type RunningAgent } from "../integration/agents";

/**
 * Deadlines short enough for a test to see an unanswered command fail, long enough for a clone
 * and `compose up` on a loaded 2-core machine.
 */
export const FAULT_CONSOLE_ENV: Record<string, string> = {
  DCC_ALLOW_INSECURE_GIT: "1",
  DCC_BASE_IMAGE: TEST_IMAGE,
  DCC_DEADLINE_DEPLOY_S: "120",
  DCC_DEADLINE_ACTION_S: "45",
};

export interface FaultStackOptions {
  consoleEnv?: Record<string, string>;
  agentEnv?: Record<string, string>;
  /** Folder holding the agent's `state/` and `workspaces/` (e.g. a small tmpfs); a temp dir by default. */
  agentRoot?: string;
  /** Share the database of this console (a second process); no agent, no git of its own then. */
  dataDir?: string;
}

export class FaultStack {
  /** Every agent process this stack started, oldest first (journals of executions span restarts). */
  readonly agents: RunningAgent[] = [];
  hostId = "";
  private ownsAgentRoot = false;

  private constructor(
    public c: RunningConsole,
    readonly git: GitServer,
    /** Between the agent and the console: cut it, black-hole it. */
    readonly link: FaultProxy,
    /** Between the agent and the forge: refuse, hold, trickle. */
    readonly forge: FaultProxy,
    readonly agentRoot: string,
    private readonly opts: FaultStackOptions,
  ) {}

  static async start(opts: FaultStackOptions = {}): Promise<FaultStack> {
    if (!(await dockerAvailable())) throw new Error("no Docker engine: run `bash scripts/test-deps.sh` first");
    const git = await startGitServer();
    const forge = new FaultProxy(Number(new URL(git.url).port));
    await forge.start();
    const c = await startConsole({ env: { ...FAULT_CONSOLE_ENV, ...opts.consoleEnv } });
    const link = new FaultProxy(c.port);
    await link.start();
    const ownsRoot = !opts.agentRoot;
    const agentRoot = opts.agentRoot ?? (await mkdtemp(join(tmpdir(), "dcc-fault-agent-")));
    const s = new FaultStack(c, git, link, forge, agentRoot, opts);
    s.ownsAgentRoot = ownsRoot;
    const e = (await c.mutate<{ token: string }>("hosts.createEnrollment", {})).body.result!.data;
    const agent = await s.spawnAgent(e.token);
    s.hostId = String((await agent.waitForLog("enrolled")).hostId);
    await agent.waitForLog("connected");
    return s;
  }

  get agent(): RunningAgent {
    return this.agents[this.agents.length - 1]!;
  }

  get stateDir(): string {
    return join(this.agentRoot, "state");
  }

  get workspaceRoot(): string {
    return join(this.agentRoot, "workspaces");
  }

  /** The agent's view of the console: through the link proxy. */
  get agentConsoleUrl(): string {
    return `ws://127.0.0.1:${this.link.port}/agent`;
  }

  /** A repository URL that goes through the forge proxy. */
  repoUrl(name: string): string {
    return `http://127.0.0.1:${this.forge.port}/${name}.git`;
  }

  private async spawnAgent(token?: string): Promise<RunningAgent> {
    const agent = await startAgent({
      consoleUrl: this.agentConsoleUrl,
      token,
      stateDir: this.stateDir,
      args: ["--allow-insecure-git"],
      env: { ...this.opts.agentEnv },
    });
    this.agents.push(agent);
    return agent;
  }

  /** Starts the agent again on the same state dir; resolves once it is connected. */
  async restartAgent(): Promise<RunningAgent> {
    const agent = await this.spawnAgent();
    await agent.waitForLog("connected", () => true, 60_000);
    return agent;
  }

  /** SIGKILLs (or SIGTERMs) the console and starts it again on the same database and port. */
  async restartConsole(hard = true): Promise<RunningConsole> {
    await this.c.stop(hard);
    this.c = await startConsole({ env: { ...FAULT_CONSOLE_ENV, ...this.opts.consoleEnv }, dataDir: this.c.dataDir, port: this.c.port });
    return this.c;
  }

  async close(): Promise<void> {
    for (const a of this.agents) {
      if (a.proc.signalCode === null && a.proc.exitCode === null) {
        try {
          a.proc.kill("SIGCONT");
        } catch {
          // gone
        }
      }
      await a.stop(true).catch(() => {});
    }
    if (this.hostId) await removeByLabel(`dcc.host=${this.hostId}`).catch(() => {});
    const dataDir = this.c.dataDir;
    await this.c.stop(true).catch(() => {});
    await rm(dataDir, { recursive: true, force: true }).catch(() => {});
    await this.link.close().catch(() => {});
    await this.forge.close().catch(() => {});
    await this.git.close().catch(() => {});
    if (this.ownsAgentRoot) await rm(this.agentRoot, { recursive: true, force: true }).catch(() => {});
  }
}
