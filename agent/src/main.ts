// dcc-agent: the host agent's entry and the one place that builds the real parts — state dir,
// journal, Docker, the ops layer, the per-app queue, the dispatcher, the command gate and the
// console channel — and wires them together. Logs are JSON lines on stdout.
//   socket → CommandProcessor (signature, host, journal, expiry, params validated once)
//          → Dispatcher (one table: action → handler) → AppQueue (one per app) → the action
import type { KeyObject } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import type { Server } from "node:http";
import { hostname } from "node:os";
import { join } from "node:path";
import Docker from "dockerode";
import { AgentChannel } from "./channel";
import { CommandProcessor } from "./commands";
import { AgentConfigError, USAGE, loadAgentConfig, type AgentConfig } from "./config";
import { CLOSE, publicKeyFromBase64 } from "./contract/protocol";
import type { HostFacts } from "./contract/facts";
import type { StatusReport, UsageSample } from "./contract/reports";
import { DependencyReporter } from "./dependency-reporter";
import { Dispatcher } from "./dispatch";
import { startHealthServer } from "./health";
import { Journal } from "./journal";
import { jsonLogger, type Logger } from "./log";
import { LogRelay } from "./log-relay";
import { GatewayRuntime } from "./gateway/runtime";
import { ComposeRunner } from "./ops/compose";
import { collectHostFacts } from "./ops/facts";
import { Ops } from "./ops/ops";
import { AppQueue } from "./queue";
import { ensureStateDir, loadIdentity, loadOrCreateAgentKey, type Identity } from "./state-dir";

export const VERSION = "0.1.0";
/** How often the agent reports its facts again (DCC_FACTS_INTERVAL_MS for tests; default 60 s). */
const FACTS_INTERVAL_MS = Math.max(1000, Number(process.env.DCC_FACTS_INTERVAL_MS) || 60_000);

/** Exit codes a supervisor can act on: 2 = fix the configuration or enrol again, 3 = this host's access ended. */
const EXIT_CONFIG = 2;
const EXIT_REFUSED = 3;

async function dockerAnswers(docker: Docker): Promise<boolean> {
  const timeout = new Promise<boolean>((r) => setTimeout(() => r(false), 3000).unref());
  return Promise.race([docker.ping().then(() => true, () => false), timeout]);
}

async function run(config: AgentConfig, log: Logger): Promise<void> {
  ensureStateDir(config.stateDir);
  const agentKey = loadOrCreateAgentKey(config.stateDir);
  const identity = loadIdentity(config.stateDir);
  if (identity && config.enrollToken) log("info", "already enrolled; the enrolment token is not used", { hostId: identity.hostId });
  if (!identity && !config.enrollToken) {
    log("error", "not enrolled: start once with --enroll <token> (from hosts.createEnrollment)");
    process.exit(EXIT_CONFIG);
  }
  const journal = Journal.open(config.stateDir);
  journal.startMaintenance();
  const docker = new Docker();
  const dockerOk = await dockerAnswers(docker);
  if (!dockerOk) log("warn", "Docker does not answer; lifecycle commands will fail until the agent is restarted with Docker up");

  // Status changes go out at once; while disconnected only the newest per app is kept.
  const statusQueue = new Map<string, StatusReport>();
  const usageQueue = new Map<string, UsageSample>();
  let ops: Ops | null = null;
  let unwatch: (() => void) | null = null;
  let starting: Promise<void> | null = null;
  let unavailable = dockerOk ? "the agent is not enrolled yet" : "Docker is not reachable on this host";
  const queue = new AppQueue();
  const currentOps = async () => (await starting, ops);

  // The ops layer labels containers with the host id, so it starts once the identity is known.
  const startOps = (hostId: string) => (starting ??= createOps(hostId));
  const createOps = async (hostId: string) => {
    if (!dockerOk) return;
    try {
      ops = await Ops.create({
        docker,
        hostId,
        workspaceRoot: config.workspaceRoot,
        // git dirs, compose files and app records live under <stateDir>/ops
        stateDir: join(config.stateDir, "ops"),
        allowInsecureGit: config.allowInsecureGit,
        exclusive: (app, task) => queue.exclusive(app, task),
        cloneTimeoutMs: config.cloneTimeoutS * 1000,
        pullTimeoutMs: config.pullTimeoutS * 1000,
        modelsDir: config.modelsDir,
        uid: config.appUser?.uid,
        gid: config.appUser?.gid,
        loopbackPorts: config.gateway !== undefined,
        log: (level, message) => log(level, message, { part: "ops" }),
      });
      unwatch = ops.watch(
        (r) => {
          statusQueue.set(r.app, r);
          flushStatus();
        },
        (u) => void usageQueue.set(u.app, u),
      );
    } catch (e) {
      unavailable = `the app manager could not start: ${(e as Error).message}`;
      log("error", "the app manager could not start; lifecycle commands will fail", { error: (e as Error).message });
    }
  };

  // After a deploy at a commit the dependency manifests are read and reported (never in its way).
  const dependencies = new DependencyReporter({ send: (m) => channel.send(m), log });

  let processor: CommandProcessor | null = null;
  const onIdentity = (id: Identity) => {
    processor = new CommandProcessor({
      hostId: id.hostId,
      consoleKey: publicKeyFromBase64(id.consolePublicKey),
      journal,
      runner: new Dispatcher({
        hostId: id.hostId,
        ops: currentOps,
        unavailable: () => unavailable,
        queue,
        log,
        onDeployed: (app, sha) => dependencies.deployed(app, sha, join(config.workspaceRoot, app)),
      }),
      rules: { allowInsecure: config.allowInsecureGit },
      send: (m) => channel.send(m),
      log,
    });
  };

  const logRelay = new LogRelay({
    source: currentOps,
    unavailable: () => unavailable,
    send: (m) => channel.send(m),
    log,
  });

  // The HTTPS gateway in front of this host's apps (DCC_GATEWAY_DOMAIN).
  let consoleKey: KeyObject | null = identity ? publicKeyFromBase64(identity.consolePublicKey) : null;
  const gateway = config.gateway
    ? new GatewayRuntime({
        config: config.gateway,
        stateDir: config.stateDir,
        consoleUrl: config.consoleUrl,
        hostId: () => channel.hostId ?? null,
        consoleKey: () => consoleKey,
        ops: () => ops,
        queue,
        send: (m) => channel.send(m),
        log: (level, msg, data) => log(level, msg, { part: "gateway", ...data }),
      })
    : null;

  let facts: { at: number; value: HostFacts } | null = null;
  const channel: AgentChannel = new AgentChannel({
    url: config.consoleUrl,
    ca: config.caFile ? readFileSync(config.caFile, "utf8") : undefined,
    stateDir: config.stateDir,
    agentKey,
    identity,
    enrollToken: config.enrollToken,
    consoleFingerprint: config.consoleFingerprint,
    name: config.name ?? (hostname().replace(/[^A-Za-z0-9._-]/g, "-").slice(0, 63) || undefined),
    agentVersion: VERSION,
    log,
    hello: async () => {
      if (!facts || Date.now() - facts.at > 60_000) {
        const value = ops ? await ops.facts(VERSION) : await factsWithoutOps(docker, config.stateDir, config.workspaceRoot);
        facts = { at: Date.now(), value };
      }
      if (gateway) facts.value = { ...facts.value, gateway: gateway.facts() };
      return { facts: facts.value, inventory: (await (await currentOps())?.inventory()) ?? [] };
    },
    onIdentity: (id) => {
      consoleKey = publicKeyFromBase64(id.consolePublicKey);
      onIdentity(id);
      // Enrolled just now: start managing apps (the hello already sent carries an empty inventory).
      void startOps(id.hostId);
    },
    onCommand: (env) => {
      if (!processor) return;
      processor.handle(env).catch((e) => log("error", "command handling failed", { error: (e as Error).message }));
    },
    onLogs: (req) => logRelay.handle(req),
    onLogsStop: (req) => logRelay.stop(req.requestId),
    onGatewayTokenAnswer: (msg) => gateway?.answer(msg),
    onDisconnect: () => logRelay.stopAll("disconnected from the console"),
    onReady: () => (flushStatus(), dependencies.flush()),
    onFatal: (code, reason) => {
      log("error", "the console refused this agent", { code, reason, action: "stopping" });
      void shutdown(code === CLOSE.enrollRefused ? EXIT_CONFIG : EXIT_REFUSED);
    },
  });
  if (identity) {
    onIdentity(identity);
    await startOps(identity.hostId);
  }

  function flushStatus() {
    if (statusQueue.size === 0 || !channel.connected) return;
    const reports = [...statusQueue.values()].slice(0, 500);
    if (channel.send({ type: "status", reports })) for (const r of reports) statusQueue.delete(r.app);
  }
  const usageTimer = setInterval(() => {
    if (usageQueue.size === 0 || !channel.connected) return;
    const samples = [...usageQueue.values()].slice(0, 500);
    if (channel.send({ type: "usage", samples })) for (const s of samples) usageQueue.delete(s.app);
  }, 5000);
  usageTimer.unref();
  // The GPU ledger, model store sizes and the gateway's state change while the agent runs: facts
  // again every minute, sent only when something in them changed (thousands of idle hosts send nothing).
  let factsSent = "";
  const factsKey = (f: HostFacts) => JSON.stringify({ ...f, modelStore: f.modelStore ? { ...f.modelStore, at: "" } : f.modelStore });
  const factsTimer = setInterval(() => {
    if (!ops || !channel.connected) return;
    void ops
      .facts(VERSION)
      .then((collected) => {
        // The gateway's state belongs to the facts too (the console derives app URLs from it).
        const value = gateway ? { ...collected, gateway: gateway.facts() } : collected;
        facts = { at: Date.now(), value };
        const key = factsKey(value);
        if (key !== factsSent && channel.send({ type: "facts", facts: value })) factsSent = key;
      })
      .catch((e) => log("warn", "collecting host facts failed", { error: (e as Error).message }));
  }, FACTS_INTERVAL_MS);
  factsTimer.unref();

  let health: Server | null = null;
  if (config.healthPort !== undefined) {
    health = await startHealthServer(config.healthPort, { version: VERSION, hostId: () => channel.hostId, connected: () => channel.connected, logFollows: () => logRelay.active });
    log("info", "health endpoint listening", { url: `http://127.0.0.1:${(health.address() as { port: number }).port}/healthz` });
  }

  let stopping = false;
  async function shutdown(code: number) {
    if (stopping) return;
    stopping = true;
    clearInterval(usageTimer);
    clearInterval(factsTimer);
    // A command about to finish may still send its result; a long one is re-run after restart.
    await Promise.race([(processor as CommandProcessor | null)?.drain(), new Promise((r) => setTimeout(r, 3000).unref())]);
    logRelay.stopAll("agent shutting down");
    await channel.stop();
    await gateway?.stop();
    unwatch?.();
    ops?.close();
    health?.close();
    journal.close();
    process.exit(code);
  }
  process.on("SIGTERM", () => void shutdown(0));
  process.on("SIGINT", () => void shutdown(0));

  log("info", "agent starting", {
    version: VERSION,
    console: config.consoleUrl,
    stateDir: config.stateDir,
    workspaceRoot: config.workspaceRoot,
    hostId: identity?.hostId ?? null,
    // Every deploy spec carries its image, resolved by the console (app > template > its base image).
    ...(config.baseImage ? { baseImage: config.baseImage } : {}),
  });
  await gateway?.start();
  channel.start();
}

/** Facts when there is no ops layer (Docker not answering, or not enrolled yet). */
function factsWithoutOps(docker: Docker, stateDir: string, workspaceRoot: string): Promise<HostFacts> {
  const homeDir = join(stateDir, "ops", "home");
  mkdirSync(homeDir, { recursive: true, mode: 0o700 });
  return collectHostFacts({ docker, compose: new ComposeRunner({ homeDir }), agentVersion: VERSION, workspaceRoot });
}

async function main() {
  const argv = process.argv.slice(2);
  if (argv.includes("--version")) return void console.log(VERSION);
  if (argv.includes("--help") || argv.includes("-h")) return void process.stdout.write(USAGE);
  const log = jsonLogger({ component: "agent" });
  let config: AgentConfig;
  try {
    config = loadAgentConfig(argv, process.env);
  } catch (e) {
    const msg = e instanceof AgentConfigError || (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS") ? (e as Error).message : String(e);
    process.stderr.write(`dcc-agent: ${msg}\n\n${USAGE}`);
    process.exit(EXIT_CONFIG);
  }
  await run(config, log);
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ t: new Date().toISOString(), level: "error", msg: "agent failed", error: (e as Error).stack ?? String(e) }) + "\n");
  process.exit(1);
});
