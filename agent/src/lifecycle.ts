// Adapter between the channel and the ops layer: builds the ops AppManager with the agent's
// settings, starts it watching (status and usage reports go to the channel), and exposes it as
// the narrow LifecycleManager the executor uses. Host facts come from the ops layer too.
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type Docker from "dockerode";
import type { HostFacts } from "./contract/facts";
import type { StatusReport, UsageSample } from "./contract/reports";
import type { LifecycleManager } from "./executor";
import type { LogSource } from "./log-relay";
import type { Logger } from "./log";
import { ComposeRunner } from "./ops/compose";
import { collectHostFacts } from "./ops/facts";
import { AppManager } from "./ops/manager";

export interface Lifecycle extends LifecycleManager, LogSource {
  facts(agentVersion: string): Promise<HostFacts>;
  stop(): void;
}

export interface LifecycleDeps {
  docker: Docker;
  hostId: string;
  workspaceRoot: string;
  /** The agent's state dir; the ops layer keeps git dirs, compose files and app records under <stateDir>/ops. */
  stateDir: string;
  allowInsecureGit: boolean;
  log: Logger;
  onStatus: (r: StatusReport) => void;
  onUsage: (u: UsageSample) => void;
  /** A provision, reinstall or update succeeded at `commitSha` (the dependency inventory hooks in here). */
  onDeployed?: (app: string, commitSha: string, workspace: string) => void;
}

const DEPLOYS = new Set(["provision", "reinstall", "update"]);

/** Resolves once the ops layer's folders are ready; rejects (nothing started) when they cannot be. */
export async function createLifecycle(d: LifecycleDeps): Promise<Lifecycle> {
  const m = new AppManager({
    workspaceRoot: d.workspaceRoot,
    stateDir: join(d.stateDir, "ops"),
    hostId: d.hostId,
    allowInsecureGit: d.allowInsecureGit,
    docker: d.docker,
    log: (level, message) => d.log(level, message, { part: "ops" }),
  });
  await m.init();
  const unwatch = m.watch(d.onStatus, d.onUsage);
  return {
    apply: async (action, app, params, progress) => {
      const r = await m.apply(app, action, params, progress);
      if (DEPLOYS.has(action) && r?.commitSha) d.onDeployed?.(app, r.commitSha, resolve(d.workspaceRoot, app));
      return { ...r };
    },
    cleanup: async (params) => ({ ...(await m.cleanup(params)) }),
    inventory: () => m.inventory(),
    streamLogs: (app, req, onLine, onEnd) => m.logs(app, { ...req, onEnd }, onLine),
    facts: (agentVersion) => m.facts(agentVersion),
    stop: () => {
      unwatch();
      m.close();
    },
  };
}

/** Facts when there is no app manager (Docker not answering, or not enrolled yet). */
export function factsWithoutManager(docker: Docker, stateDir: string, workspaceRoot: string, agentVersion: string): Promise<HostFacts> {
  const homeDir = join(stateDir, "ops", "home");
  mkdirSync(homeDir, { recursive: true, mode: 0o700 });
  return collectHostFacts({ docker, compose: new ComposeRunner({ homeDir }), agentVersion, workspaceRoot });
}
