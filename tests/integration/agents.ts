// Agent-side test tools: the built agent (agent/dist/dcc-agent.mjs) as a real process with its
// JSON log parsed, a scripted fake console (to send the agent commands no real console would),
// a scripted fake agent (to send the console reports no real agent would), and a TCP relay whose
// link a test can cut.
import { spawn, type ChildProcess } from "node:child_process";
import { createPrivateKey, type KeyObject } from "node:crypto";
import { rmSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { createServer, connect, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket, { WebSocketServer } from "ws";
import {
  AgentMessageSchema,
  ConsoleMessageSchema,
  PROTOCOL_VERSION,
  generateSigningKeyPair,
  newNonce,
  signAuth,
  signChallenge,
  signEnroll,
  type AgentMessage,
  type ConsoleMessage,
} from "../../agent/src/contract/protocol";
import { ROOT } from "../support/console";
import { freePort } from "../support/net";

export const AGENT_SCRIPT = join(ROOT, "agent/dist/dcc-agent.mjs");

type Truthy<T> = Exclude<T, false | 0 | "" | null | undefined>;

export async function waitFor<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 20_000, everyMs = 50): Promise<Truthy<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as Truthy<T>;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export type LogEntry = { level: string; msg: string; [k: string]: unknown };

export interface RunningAgent {
  proc: ChildProcess;
  stateDir: string;
  output(): string;
  logs(): LogEntry[];
  /** Log entries with this message. */
  find(msg: string): LogEntry[];
  waitForLog(msg: string, pred?: (e: LogEntry) => boolean, timeoutMs?: number): Promise<LogEntry>;
  exited: Promise<number | null>;
  stop(hard?: boolean): Promise<void>;
}

export interface AgentOptions {
  consoleUrl: string;
  stateDir?: string;
  token?: string;
  args?: string[];
  env?: Record<string, string>;
}

export async function startAgent(o: AgentOptions): Promise<RunningAgent> {
  let stateDir = o.stateDir;
  if (!stateDir) {
    // A state dir made here outlives restarts of this agent within the test file, then goes.
    const root = await mkdtemp(join(tmpdir(), "dcc-agent-"));
    process.once("exit", () => rmSync(root, { recursive: true, force: true }));
    stateDir = join(root, "state");
  }
  const workspaceRoot = join(stateDir, "..", "workspaces");
  const args = [AGENT_SCRIPT, "--console", o.consoleUrl, "--state-dir", stateDir, "--workspace-root", workspaceRoot, ...(o.token ? ["--enroll", o.token] : []), ...(o.args ?? [])];
  const proc = spawn(process.execPath, args, {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", ...o.env } as unknown as NodeJS.ProcessEnv,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  proc.stdout!.on("data", (d) => (out += d));
  proc.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
  const logs = () =>
    out
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => {
        try {
          return JSON.parse(l) as LogEntry;
        } catch {
          return null;
        }
      })
      .filter((x): x is LogEntry => x !== null);
  const find = (msg: string) => logs().filter((e) => e.msg === msg);
  return {
    proc,
    stateDir,
    output: () => out,
    logs,
    find,
    waitForLog: (msg, pred = () => true, timeoutMs = 20_000) =>
      waitFor(`agent log "${msg}"\n${out.slice(-3000)}`, () => find(msg).find(pred), timeoutMs),
    exited,
    async stop(hard = false) {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(hard ? "SIGKILL" : "SIGTERM");
      await exited;
    },
  };
}

/** Command ids the agent actually ran (one "command executed" line per run). */
export function executions(agent: RunningAgent, id?: string): LogEntry[] {
  return agent.find("command executed").filter((e) => id === undefined || e.id === id);
}

// ---------------------------------------------------------------------------------------------
// A fake console: speaks the protocol with its own key, enrols any token, and lets the test send
// whatever it likes once the agent is ready.

export class FakeConsole {
  readonly keys = generateSigningKeyPair();
  readonly privateKey: KeyObject = createPrivateKey(this.keys.privateKeyPem);
  readonly received: AgentMessage[] = [];
  private server!: Server;
  private wss!: WebSocketServer;
  socket: WebSocket | null = null;
  hostId = "fake-host-1";
  port = 0;

  async start(): Promise<void> {
    this.port = await freePort();
    this.wss = new WebSocketServer({ port: this.port, host: "127.0.0.1", path: "/agent" });
    await new Promise<void>((r) => this.wss.once("listening", () => r()));
    this.wss.on("connection", (ws) => {
      this.socket = ws;
      const nonce = newNonce();
      ws.on("message", (data) => {
        const msg = AgentMessageSchema.parse(JSON.parse(data.toString()));
        this.received.push(msg);
        if (msg.type === "enroll") this.send({ type: "enrolled", hostId: this.hostId, consolePublicKey: this.keys.publicKey });
        if (msg.type === "hello") this.send({ type: "welcome", hostId: this.hostId, pingIntervalMs: 15_000 });
      });
      this.send({ type: "challenge", protocol: PROTOCOL_VERSION, nonce, sig: signChallenge(nonce, this.privateKey) });
    });
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/agent`;
  }

  send(msg: ConsoleMessage | Record<string, unknown>): void {
    this.socket?.send(JSON.stringify(msg));
  }

  of<T extends AgentMessage["type"]>(type: T): Extract<AgentMessage, { type: T }>[] {
    return this.received.filter((m) => m.type === type) as Extract<AgentMessage, { type: T }>[];
  }

  async close(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    await new Promise((r) => this.wss.close(r));
  }
}

// ---------------------------------------------------------------------------------------------
// A fake agent: enrols with a token over the real protocol and then sends what the test says.

export class FakeAgent {
  readonly keys = generateSigningKeyPair();
  readonly privateKey = createPrivateKey(this.keys.privateKeyPem);
  readonly received: ConsoleMessage[] = [];
  ws!: WebSocket;
  hostId = "";
  closed: Promise<{ code: number; reason: string }> = new Promise(() => {});

  /** Enrols (token) or authenticates (hostId) and sends hello; resolves on welcome. */
  async connect(url: string, how: { token: string } | { hostId: string }, inventory: unknown[] = [], facts: Record<string, unknown> = { hostname: "fake" }): Promise<void> {
    this.ws = new WebSocket(url, { maxPayload: 4 * 1024 * 1024 });
    this.closed = new Promise((r) => this.ws.once("close", (code, reason) => r({ code, reason: reason.toString() })));
    const hello = { type: "hello", protocol: PROTOCOL_VERSION, agentVersion: "fake", facts, inventory };
    await new Promise<void>((resolve, reject) => {
      this.ws.on("message", (data) => {
        const msg = ConsoleMessageSchema.parse(JSON.parse(data.toString()));
        this.received.push(msg);
        if (msg.type === "challenge") {
          if ("token" in how) {
            this.ws.send(JSON.stringify({ type: "enroll", token: how.token, publicKey: this.keys.publicKey, sig: signEnroll(msg.nonce, this.keys.publicKey, this.privateKey) }));
          } else {
            this.hostId = how.hostId;
            this.ws.send(JSON.stringify({ type: "auth", hostId: how.hostId, sig: signAuth(msg.nonce, how.hostId, this.privateKey) }));
            this.ws.send(JSON.stringify(hello));
          }
        }
        if (msg.type === "enrolled") {
          this.hostId = msg.hostId;
          this.ws.send(JSON.stringify(hello));
        }
        if (msg.type === "welcome") resolve();
      });
      this.closed.then((c) => reject(new Error(`closed ${c.code} ${c.reason}`)));
    });
  }

  send(msg: unknown): void {
    this.ws.send(typeof msg === "string" ? msg : JSON.stringify(msg));
  }

  commands(): Extract<ConsoleMessage, { type: "command" }>[] {
    return this.received.filter((m) => m.type === "command") as Extract<ConsoleMessage, { type: "command" }>[];
  }

  /**
   * Acks every command received from now on, once each, and sends `answer(cmd)` as its result
   * (null: ack only, a command that runs on). Returns a function that stops answering.
   */
  autoAnswer(answer: (cmd: FakeCommand) => Record<string, unknown> | null): () => void {
    const done = new Set<string>();
    const timer = setInterval(() => {
      for (const m of this.commands()) {
        const cmd = JSON.parse(m.payload) as FakeCommand;
        if (done.has(cmd.id)) continue;
        done.add(cmd.id);
        this.send({ type: "ack", id: cmd.id });
        const r = answer(cmd);
        if (r) this.send({ type: "result", id: cmd.id, ...r });
      }
    }, 20);
    timer.unref();
    return () => clearInterval(timer);
  }
}

/** What a fake agent reads of a command it answers. */
export interface FakeCommand {
  id: string;
  action: string;
  app: string | null;
}

// ---------------------------------------------------------------------------------------------
// A TCP relay between agent and console whose connections a test can cut at will.

export class Relay {
  private server!: Server;
  private readonly pairs = new Set<[Socket, Socket]>();
  port = 0;
  paused = false;

  constructor(private readonly targetPort: number) {}

  async start(): Promise<void> {
    this.port = await freePort();
    this.server = createServer((client) => {
      if (this.paused) return client.destroy();
      const upstream = connect(this.targetPort, "127.0.0.1");
      const pair: [Socket, Socket] = [client, upstream];
      this.pairs.add(pair);
      client.pipe(upstream).pipe(client);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.pairs.delete(pair);
      };
      client.on("error", drop).on("close", drop);
      upstream.on("error", drop).on("close", drop);
    });
    await new Promise<void>((r) => this.server.listen(this.port, "127.0.0.1", () => r()));
  }

  /** Destroys every relayed connection (both ends see the link die) and refuses new ones while paused. */
  cut(pause = true): void {
    this.paused = pause;
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
  }

  resume(): void {
    this.paused = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise((r) => this.server.close(r));
  }
}
