// The local agent: with the default start the console also runs an agent for its own machine
// (when Docker answers, or when DCC_LOCAL_AGENT forces it), as a child process of the single-file
// build. It enrols itself with a token the console mints for it, keeps its keys and journal under
// $DCC_DATA_DIR/agent, inherits the workspace root, base image and insecure-git switch, is
// restarted when it dies and stopped with the console.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import Docker from "dockerode";
import { IDENTITY_FILE } from "../../agent/src/contract/protocol";
import type { Actor, ConsoleContext } from "../context.server";
import { createEnrollment } from "../services/enrollment.server";
import type { HubLogger } from "./log.server";

export interface LocalAgent {
  stop(): Promise<void>;
}

/** Exit codes after which a restart cannot help (see agent/src/main.ts). */
const NO_RESTART = new Set([2, 3]);
const SYSTEM: Actor = { kind: "system", id: "console", role: "admin" };

async function dockerAnswers(): Promise<boolean> {
  const timeout = new Promise<boolean>((r) => setTimeout(() => r(false), 3000).unref());
  return Promise.race([new Docker().ping().then(() => true, () => false), timeout]);
}

function consoleHost(listenHost: string): { host: string; loopback: boolean } {
  if (["0.0.0.0", "::", "", "localhost"].includes(listenHost) || listenHost.startsWith("127.")) return { host: "127.0.0.1", loopback: true };
  if (listenHost === "::1") return { host: "[::1]", loopback: true };
  return { host: listenHost.includes(":") ? `[${listenHost}]` : listenHost, loopback: false };
}

export async function startLocalAgent(ctx: ConsoleContext, opts: { port: number; log: HubLogger }): Promise<LocalAgent | null> {
  const { config } = ctx;
  const { log } = opts;
  if (config.localAgent === false) return null;
  if (config.localAgent === undefined && !(await dockerAnswers())) {
    log("info", "Docker does not answer: no local agent (set DCC_LOCAL_AGENT=1 to start one anyway)");
    return null;
  }
  const stateDir = join(config.dataDir, "agent");
  const script = join(config.rootDir, "agent/dist/dcc-agent.mjs");
  if (!existsSync(script)) {
    log("warn", "no local agent: the agent build is missing (run npm run build)", { script });
    return null;
  }
  const { host, loopback } = consoleHost(config.host);
  const origin = `http://${host}:${opts.port}`;
  const args = [
    script,
    "--console",
    `ws://${host}:${opts.port}/agent`,
    "--state-dir",
    stateDir,
    "--workspace-root",
    config.workspaceRoot,
    "--base-image",
    config.baseImage,
    ...(config.allowInsecureGit ? ["--allow-insecure-git"] : []),
    ...(loopback ? [] : ["--allow-insecure-ws"]),
  ];

  let child: ChildProcess | null = null;
  let stopping = false;
  let delay = 1000;
  let restartTimer: NodeJS.Timeout | null = null;

  const launch = async () => {
    restartTimer = null;
    if (stopping) return;
    // The console's own secrets (database token, admin token, session key) stay out of its env.
    const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin" };
    // DCC_MODELS_DIR: the shared model store, when it is not <workspace root>/.models;
    // DCC_FACTS_INTERVAL_MS: how often the agent reports its facts (GPU ledger) again.
    for (const k of ["HOME", "DOCKER_HOST", "DOCKER_CONFIG", "LANG", "TZ", "DCC_MODELS_DIR", "DCC_FACTS_INTERVAL_MS"]) if (process.env[k]) env[k] = process.env[k]!;
    // ---- gateway: this machine's gateway settings, when the console's environment has them
    for (const k of Object.keys(process.env)) if (k.startsWith("DCC_GATEWAY_")) env[k] = process.env[k]!;
    // ---- end gateway
    if (!existsSync(join(stateDir, IDENTITY_FILE))) {
      const e = await createEnrollment(ctx, SYSTEM, { name: hostname().replace(/[^A-Za-z0-9._-]/g, "-").slice(0, 63) || "local", consoleOrigin: origin, ttlMs: 10 * 60_000 });
      env.DCC_ENROLL_TOKEN = e.token;
    }
    const started = Date.now();
    const proc = spawn(process.execPath, args, { env: env as NodeJS.ProcessEnv, stdio: ["ignore", "inherit", "inherit"] });
    child = proc;
    log("info", "local agent started", { pid: proc.pid, stateDir });
    proc.once("exit", (code, signal) => {
      child = null;
      if (stopping) return;
      if (code !== null && NO_RESTART.has(code)) {
        log("error", "local agent was refused and is not restarted (see its log above)", { code });
        return;
      }
      delay = Date.now() - started > 60_000 ? 1000 : Math.min(delay * 2, 30_000);
      log("warn", "local agent exited; restarting", { code, signal, inMs: delay });
      restartTimer = setTimeout(() => void launch().catch((err) => log("error", "local agent restart failed", { error: (err as Error).message })), delay);
    });
  };
  await launch();

  return {
    async stop() {
      stopping = true;
      if (restartTimer) clearTimeout(restartTimer);
      const proc = child;
      if (!proc || proc.exitCode !== null) return;
      const exited = new Promise<void>((r) => proc.once("exit", () => r()));
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
