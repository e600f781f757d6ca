// Wires the gateway into a running agent: Caddy + forward auth (./gateway.ts), the container
// guard (./firewall.ts), sleep/wake (./sleep.ts), and API-token questions over the console
// connection. main.ts builds it when DCC_GATEWAY_DOMAIN is set.
import { randomUUID, type KeyObject } from "node:crypto";
import { join } from "node:path";
import type { GatewayConfig } from "../config";
import type { GatewayFacts, GatewayTokenAnswer } from "../contract/gateway";
import type { AgentMessage } from "../contract/protocol";
import type { Logger } from "../log";
import type { Ops } from "../ops/ops";
import type { AppQueue } from "../queue";
import type { TokenVerdict } from "./auth";
import { ContainerGuard, firewallTag } from "./firewall";
import { Gateway } from "./gateway";
import { SleepWake } from "./sleep";
import { openConnections } from "./connections";

export interface GatewayRuntimeOptions {
  config: GatewayConfig;
  stateDir: string;
  /** The agent's console URL (ws[s]://host/agent); browsers get its http(s) origin. */
  consoleUrl: string;
  hostId: () => string | null;
  consoleKey: () => KeyObject | null;
  ops: () => Ops | null;
  queue: AppQueue;
  /** Sends to the console; false when not connected. */
  send: (msg: AgentMessage) => boolean;
  log: Logger;
  /** How often the app list and idle apps are looked at (default 1 s and 15 s). */
  syncEveryMs?: number;
  idleCheckEveryMs?: number;
}

const TOKEN_ANSWER_MS = 5000;

export function consoleOriginOf(consoleUrl: string): string {
  const u = new URL(consoleUrl);
  return `${u.protocol === "wss:" ? "https:" : "http:"}//${u.host}`;
}

export class GatewayRuntime {
  readonly gateway: Gateway;
  readonly sleep: SleepWake;
  private readonly guard: ContainerGuard;
  private readonly pending = new Map<string, (v: TokenVerdict) => void>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly o: GatewayRuntimeOptions) {
    const origin = o.config.consoleOrigin ?? consoleOriginOf(o.consoleUrl);
    const consolePort = Number(new URL(origin).port || (origin.startsWith("https") ? 443 : 80));
    this.guard = new ContainerGuard({ tag: firewallTag(o.stateDir), blockPorts: [consolePort] });
    const app = (name: string) => o.ops()?.gatewayApps().find((a) => a.name === name);
    this.sleep = new SleepWake({
      app,
      apps: () => (o.ops()?.gatewayApps() ?? []).map((a) => a.name),
      stop: (name, reason) => this.queued(name, "sleep", (ops, ctx) => ops.actions.stop(name, ctx, reason)),
      start: (name) => this.queued(name, "wake", (ops, ctx) => ops.actions.start(name, undefined, ctx)),
      stateFile: join(o.stateDir, "gateway", "asleep.json"),
      log: o.log,
      minuteMs: o.config.idleMinuteMs,
      openConnections: async (name) => {
        const port = app(name)?.port;
        return port ? openConnections(port) : 0;
      },
      checkEveryMs: o.idleCheckEveryMs ?? Math.min(15_000, Math.max(100, Math.floor(o.config.idleMinuteMs / 4))),
    });
    this.gateway = new Gateway({
      config: o.config,
      stateDir: o.stateDir,
      consoleOrigin: origin,
      hostId: o.hostId,
      consoleKey: o.consoleKey,
      checkToken: (appName, hash) => this.askConsole(appName, hash),
      access: (name, upgrade) => this.sleep.access(name, upgrade),
      log: o.log,
      tokenCacheMs: o.config.tokenCacheS * 1000,
    });
  }

  private async queued(app: string, what: string, task: (ops: Ops, ctx: { signal: AbortSignal; progress: () => void }) => Promise<unknown>): Promise<void> {
    const ops = this.o.ops();
    if (!ops) throw new Error("the app manager is not running");
    const ctx = { signal: new AbortController().signal, progress: () => {} };
    await this.o.queue.run(app, `gateway-${what}-${randomUUID()}`, () => task(ops, ctx));
  }

  private askConsole(app: string, tokenHash: string): Promise<TokenVerdict> {
    const requestId = randomUUID();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new Error("no answer from the console"));
      }, TOKEN_ANSWER_MS);
      this.pending.set(requestId, (v) => (clearTimeout(t), resolve(v)));
      if (!this.o.send({ type: "gateway-token", requestId, app, tokenHash })) {
        clearTimeout(t);
        this.pending.delete(requestId);
        reject(new Error("not connected to the console"));
      }
    });
  }

  /** The console's answer to a token question. */
  answer(msg: GatewayTokenAnswer): void {
    const done = this.pending.get(msg.requestId);
    if (!done) return;
    this.pending.delete(msg.requestId);
    done({ ok: msg.ok, sub: msg.sub });
  }

  private apps() {
    return (this.o.ops()?.gatewayApps() ?? []).map((a) => ({ name: a.name, port: a.port }));
  }

  async start(): Promise<void> {
    const fw = await this.guard.apply();
    this.gateway.firewall = fw;
    this.o.log(fw.ok ? "info" : "warn", "container guard", fw);
    let started = true;
    try {
      await this.gateway.start(this.apps());
    } catch (e) {
      // The agent keeps running (apps are still managed); facts report why there is no gateway.
      started = false;
      this.o.log("error", "the gateway could not start; fix it and restart the agent", { error: (e as Error).message });
    }
    this.sleep.start();
    this.timer = setInterval(() => {
      if (!started) return;
      this.gateway.setApps(this.apps()).catch((e) => this.o.log("error", "gateway reload failed", { error: (e as Error).message }));
    }, this.o.syncEveryMs ?? 1000);
    this.timer.unref();
  }

  facts(): GatewayFacts {
    return this.gateway.facts();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.sleep.stop();
    await this.gateway.stop();
    await this.guard.remove().catch(() => undefined);
  }
}
