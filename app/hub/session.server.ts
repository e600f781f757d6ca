// One agent socket: challenge → auth (or one-time enrol) → hello → ready. Messages from a socket
// are handled strictly in order. Anything malformed, out of turn or unauthenticated closes the
// socket with a code and a reason the agent logs. Once ready, the session delivers the host's
// unfinished commands (signed) and hands every answer and report to the use-case layer.
import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import WebSocket from "ws";
import {
  AgentMessageSchema,
  CLOSE,
  PROTOCOL_VERSION,
  closeReason,
  newNonce,
  parseMessage,
  signChallenge,
  signCommand,
  tryPublicKey,
  verifyAuth,
  verifyEnroll,
  type AgentMessage,
  type CommandAction,
  type ConsoleMessage,
} from "../../agent/src/contract/protocol";
import type { UsageSample } from "../../agent/src/contract/reports";
import type { ConsoleContext, LogSink } from "../context.server";
import type { ConsoleKey } from "../services/console-key.server";
import { prepullOnEnrol } from "../services/prepull.server";
import { hostCredentials, redeemEnrollment } from "../services/enrollment.server";
import { commandAcked, commandFinished, commandProgress, commandRejected } from "../services/command-answers.server";
import { countAttempts, unfinishedCommands } from "../services/outbox.server";
import { applyInventory, applyStatusReports, publishLogLines, type Refusal } from "../services/reports.server";
import { hostDisconnected, type HostOnline } from "../services/host-presence.server";
import { commandDeadline } from "../services/commands.server";
import { commandSecrets } from "../services/app-config.server";
import { signCommandSecrets } from "../../agent/src/contract/command-secrets";
import { notifyEvent } from "../services/notify.server";
import { recordDependencies } from "../services/scan.server";
import { updateHostFacts } from "../services/hosts.server";
import { answerGatewayToken } from "../services/gateway.server";
import type { HubLogger } from "./log.server";

/** What a session needs from its hub. */
export interface SessionHost {
  ctx: ConsoleContext;
  key: ConsoleKey;
  processId: string;
  log: HubLogger;
  authTimeoutMs: number;
  /** How often the console pings the agent (told to it in welcome). */
  pingIntervalMs: number;
  /** Makes this the host's session (closing an older one); called when hello is accepted. */
  register(s: AgentSession): void;
  unregister(s: AgentSession): void;
  queueUsage(hostId: string, samples: UsageSample[]): void;
  kick(hostId: string): void;
  /** Records the host online (batched with other hellos); false when it was revoked meanwhile. */
  markOnline(entry: HostOnline): Promise<boolean>;
  /** Asks for apps waiting for a host to be placed (coalesced across a burst of hellos). */
  requestPlacement(): void;
}

type State = "challenged" | "authed" | "ready" | "closed";

/** The agent's address; behind a proxy on loopback, the first X-Forwarded-For hop. */
export function peerAddress(req: IncomingMessage): string | null {
  let addr = req.socket.remoteAddress ?? null;
  if (addr?.startsWith("::ffff:")) addr = addr.slice(7);
  const loopback = addr === "::1" || addr?.startsWith("127.");
  const fwd = req.headers["x-forwarded-for"];
  if (loopback && typeof fwd === "string" && fwd.trim()) return fwd.split(",")[0].trim().slice(0, 64);
  return addr;
}

export class AgentSession {
  hostId: string | null = null;
  state: State = "challenged";
  alive = true;
  seenAt = Date.now();
  seenWrittenAt = 0;
  readonly address: string | null;
  private readonly nonce = newNonce();
  private chain: Promise<void> = Promise.resolve();
  private readonly authTimer: NodeJS.Timeout;
  /** Command ids sent on this connection: never sent twice on one socket. */
  private readonly sent = new Set<string>();
  private readonly forget: string[] = [];
  private delivering: Promise<void> | null = null;
  private again = false;
  /** Log requests sent on this socket, by request id. */
  private readonly logRequests = new Map<string, { app: string; follow: boolean; sink: LogSink }>();

  constructor(
    private readonly hub: SessionHost,
    readonly ws: WebSocket,
    req: IncomingMessage,
  ) {
    this.address = peerAddress(req);
    this.authTimer = setTimeout(() => this.close(CLOSE.authTimeout, "no valid auth and hello within the time allowed"), hub.authTimeoutMs);
    ws.on("pong", () => {
      this.alive = true;
      this.seenAt = Date.now();
    });
    ws.on("message", (data, isBinary) => this.onFrame(data as Buffer, isBinary));
    ws.on("close", (code, reason) => this.onClose(code, reason.toString()));
    ws.on("error", (e) => hub.log("warn", "agent socket error", { hostId: this.hostId, address: this.address, error: e.message }));
    this.send({ type: "challenge", protocol: PROTOCOL_VERSION, nonce: this.nonce, sig: signChallenge(this.nonce, hub.key.privateKey) });
  }

  send(msg: ConsoleMessage): boolean {
    if (this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  close(code: number, reason: string): void {
    if (this.state === "closed") return;
    this.hub.log(code === CLOSE.goingAway || code === CLOSE.replaced ? "info" : "warn", "closing agent socket", {
      hostId: this.hostId,
      address: this.address,
      code,
      reason,
    });
    this.state = "closed";
    this.ws.close(code, closeReason(reason));
    // A peer that does not finish the closing handshake is cut off.
    setTimeout(() => this.ws.terminate(), 5000).unref();
  }

  terminate(why: string): void {
    this.hub.log("warn", "agent connection dead", { hostId: this.hostId, address: this.address, why });
    this.ws.terminate();
  }

  private onFrame(data: Buffer, isBinary: boolean): void {
    if (this.state === "closed") return;
    this.seenAt = Date.now();
    if (isBinary) return this.close(CLOSE.unsupportedData, "binary messages are not part of the protocol");
    const parsed = parseMessage(AgentMessageSchema, data.toString("utf8"));
    if (!parsed.ok) return this.close(CLOSE.protocolError, parsed.error);
    const msg = parsed.msg;
    this.chain = this.chain
      .then(() => (this.state === "closed" ? undefined : this.handle(msg)))
      .catch((e) => {
        this.hub.log("error", "agent message failed", { hostId: this.hostId, type: msg.type, error: (e as Error).message });
        this.close(1011, "internal error");
      });
  }

  private async handle(msg: AgentMessage): Promise<void> {
    const { ctx, log } = this.hub;
    if (this.state === "challenged") {
      if (msg.type === "auth") return this.authenticate(msg.hostId, msg.sig);
      if (msg.type === "enroll") return this.enroll(msg);
      return this.close(CLOSE.protocolError, `expected auth or enroll, got ${msg.type}`);
    }
    if (this.state === "authed") {
      if (msg.type !== "hello") return this.close(CLOSE.protocolError, `expected hello, got ${msg.type}`);
      return this.hello(msg);
    }
    const hostId = this.hostId!;
    switch (msg.type) {
      case "ack":
        return commandAcked(ctx, hostId, msg.id);
      case "progress":
        return commandProgress(ctx, hostId, msg.id, msg.progress);
      case "result": {
        const outcome = await commandFinished(ctx, hostId, { id: msg.id, ok: msg.ok, result: msg.result, error: msg.error, observed: msg.observed });
        this.done(msg.id);
        if (outcome === "unknown") log("warn", "result for an unknown command ignored", { hostId, id: msg.id });
        else log(outcome === "duplicate" ? "debug" : "info", "command finished", { hostId, id: msg.id, ok: msg.ok, outcome, ...(msg.error ? { error: msg.error } : {}) });
        return;
      }
      case "refused":
        log("warn", "agent refused a command", { hostId, id: msg.id ?? null, code: msg.code, reason: msg.reason });
        if (msg.id) {
          await commandRejected(ctx, hostId, msg.id, `refused by the agent (${msg.code}): ${msg.reason}`);
          this.done(msg.id);
        }
        return;
      case "status":
        return this.logRefusals("status", await applyStatusReports(ctx, hostId, msg.reports));
      case "usage":
        return this.hub.queueUsage(hostId, msg.samples);
      case "log":
        if (msg.requestId) return this.logAnswer(msg);
        return this.logRefusals("log", await publishLogLines(ctx, hostId, msg.lines));
      case "dependencies":
        return this.logRefusals("dependencies", await recordDependencies(ctx, hostId, msg));
      case "facts":
        return updateHostFacts(ctx, hostId, msg.facts);
      // ---- gateway: an API token presented at this host's gateway
      case "gateway-token":
        this.send(await answerGatewayToken(ctx, hostId, msg));
        return;
      // ---- end gateway
      default:
        return this.close(CLOSE.protocolError, `unexpected ${msg.type} after hello`);
    }
  }

  logRefusals(kind: string, refused: Refusal[]): void {
    for (const r of refused) this.hub.log("warn", "agent report refused", { hostId: this.hostId, kind, app: r.app, reason: r.reason });
  }

  private async authenticate(hostId: string, sig: string): Promise<void> {
    const creds = await hostCredentials(this.hub.ctx, hostId);
    if (!creds) return this.close(CLOSE.unknownHost, `unknown host ${hostId}`);
    if (creds.revoked) return this.close(CLOSE.revoked, "host revoked: its agent is refused");
    const key = creds.publicKey ? tryPublicKey(creds.publicKey) : null;
    if (!key || !verifyAuth(this.nonce, hostId, sig, key)) return this.close(CLOSE.authFailed, "signature does not verify against the host's key");
    this.hostId = hostId;
    this.state = "authed";
  }

  private async enroll(msg: Extract<AgentMessage, { type: "enroll" }>): Promise<void> {
    const key = tryPublicKey(msg.publicKey);
    if (!key) return this.close(CLOSE.enrollRefused, "publicKey is not an Ed25519 key");
    if (!verifyEnroll(this.nonce, msg.publicKey, msg.sig, key)) return this.close(CLOSE.enrollRefused, "the agent did not prove it holds the key");
    const r = await redeemEnrollment(this.hub.ctx, { token: msg.token, publicKey: msg.publicKey, name: msg.name, address: this.address });
    if (!r.ok) return this.close(CLOSE.enrollRefused, r.reason);
    this.hub.log("info", "host enrolled", { hostId: r.hostId, name: r.name, address: this.address });
    // The base image starts coming before the first app asks for it (sent after hello).
    await prepullOnEnrol(this.hub.ctx, r.hostId).catch((err) => this.hub.log("error", "automatic pre-pull could not be queued", { hostId: r.hostId, error: String(err) }));
    this.hostId = r.hostId;
    this.state = "authed";
    this.send({ type: "enrolled", hostId: r.hostId, consolePublicKey: this.hub.key.publicKey });
  }

  private async hello(msg: Extract<AgentMessage, { type: "hello" }>): Promise<void> {
    const { ctx, log } = this.hub;
    const hostId = this.hostId!;
    if (msg.protocol !== PROTOCOL_VERSION) {
      return this.close(CLOSE.versionMismatch, `protocol ${msg.protocol} is not supported; this console speaks ${PROTOCOL_VERSION}`);
    }
    const ok = await this.hub.markOnline({ hostId, processId: this.hub.processId, address: this.address, facts: msg.facts });
    if (!ok) return this.close(CLOSE.revoked, "host revoked: its agent is refused");
    clearTimeout(this.authTimer);
    this.state = "ready";
    this.seenWrittenAt = Date.now();
    this.hub.register(this);
    this.send({ type: "welcome", hostId, pingIntervalMs: this.hub.pingIntervalMs });
    log("info", "agent connected", { hostId, address: this.address, agentVersion: msg.agentVersion, apps: msg.inventory.length });
    this.logRefusals("inventory", await applyInventory(ctx, hostId, msg.inventory));
    void this.deliver();
    this.hub.requestPlacement();
  }

  /** Sends every unfinished command of the host that this socket has not carried yet, in order. */
  deliver(): Promise<void> {
    if (this.state !== "ready") return Promise.resolve();
    if (this.delivering) {
      this.again = true;
      return this.delivering;
    }
    this.delivering = (async () => {
      const { ctx, key, log } = this.hub;
      const hostId = this.hostId!;
      do {
        this.again = false;
        const rows = await unfinishedCommands(ctx, hostId);
        const sentNow: string[] = [];
        for (const c of rows) {
          if (this.sent.has(c.id) || this.state !== "ready") continue;
          if (Date.parse(c.expiresAt) <= Date.now()) {
            await commandRejected(ctx, hostId, c.id, "expired before the agent confirmed it");
            log("warn", "command expired undelivered", { hostId, id: c.id, action: c.action });
            continue;
          }
          let env;
          try {
            // The deadline is fixed at the first send and re-sent unchanged: the signed bytes of a
            // re-delivery are the same, so the agent's journal recognises it.
            const deadlineAt = c.deadlineAt ?? (await commandDeadline(ctx, c));
            env = signCommand(
              {
                v: PROTOCOL_VERSION,
                id: c.id,
                hostId,
                app: c.appName,
                action: c.action as CommandAction,
                params: c.params,
                issuedAt: c.issuedAt,
                expiresAt: c.expiresAt,
                ...(deadlineAt ? { deadlineAt } : {}),
              },
              key.privateKey,
            );
            // Secret values are resolved now and signed apart, bound to this command: the
            // commands row holds only their names.
            const secrets = await commandSecrets(ctx, c);
            if (secrets) env = { ...env, secrets: signCommandSecrets(secrets, key.privateKey) };
          } catch (e) {
            await commandRejected(ctx, hostId, c.id, `cannot be sent: ${(e as Error).message.slice(0, 500)}`);
            log("error", "command cannot be sent", { hostId, id: c.id, error: (e as Error).message });
            continue;
          }
          if (!this.send(env)) break;
          this.sent.add(c.id);
          sentNow.push(c.id);
        }
        await countAttempts(ctx, sentNow);
        if (sentNow.length) log("debug", "commands sent", { hostId, ids: sentNow });
      } while (this.again && this.state === "ready");
    })()
      .catch((e) => this.hub.log("error", "delivery failed", { hostId: this.hostId, error: (e as Error).message }))
      .finally(() => {
        this.delivering = null;
        for (const id of this.forget.splice(0)) this.sent.delete(id);
      });
    return this.delivering;
  }

  /**
   * Asks this host's agent for an app's logs; the answer goes to `sink`. The returned function
   * forgets the request and, for a follow, tells the agent to stop reading.
   */
  openLogs(req: { app: string; tail: number; follow: boolean }, sink: LogSink): () => void {
    const requestId = randomUUID();
    if (this.state !== "ready") {
      sink.end("host offline: its agent is not connected");
      return () => {};
    }
    this.logRequests.set(requestId, { app: req.app, follow: req.follow, sink });
    this.send({ type: "logs", requestId, app: req.app, tail: req.tail, ...(req.follow ? { follow: true } : {}) });
    return () => {
      if (this.logRequests.delete(requestId) && req.follow) this.send({ type: "logs-stop", requestId });
    };
  }

  /** Lines answer only the request they name, on this socket, and only for the app it asked about. */
  private logAnswer(msg: Extract<AgentMessage, { type: "log" }>): void {
    const r = this.logRequests.get(msg.requestId!);
    if (!r) return; // stopped or timed out meanwhile
    const own = msg.lines.filter((l) => l.app === r.app);
    if (own.length < msg.lines.length) {
      const other = msg.lines.find((l) => l.app !== r.app)!;
      this.logRefusals("log", [{ app: other.app, reason: `log lines for ${other.app} in an answer about ${r.app}` }]);
    }
    if (own.length) r.sink.lines(own);
    if (msg.done) {
      this.logRequests.delete(msg.requestId!);
      r.sink.end(msg.error);
    }
  }

  /** A finished command leaves the sent-set, but not while a delivery may hold an older read. */
  private done(id: string): void {
    if (this.delivering) this.forget.push(id);
    else this.sent.delete(id);
  }

  private onClose(code: number, reason: string): void {
    clearTimeout(this.authTimer);
    const wasReady = this.state === "ready" || (this.state === "closed" && this.hostId !== null);
    this.state = "closed";
    const pending = [...this.logRequests.values()];
    this.logRequests.clear();
    for (const r of pending) r.sink.end("host offline: its agent disconnected");
    this.hub.unregister(this);
    if (this.hostId && wasReady) {
      this.hub.log("info", "agent disconnected", { hostId: this.hostId, code, reason });
    }
  }

  /** Called by the hub when this was the host's current session and it is gone. */
  async markOffline(): Promise<void> {
    if (this.hostId) await hostDisconnected(this.hub.ctx, this.hostId, this.hub.processId);
    if (this.hostId) await notifyEvent(this.hub.ctx, { kind: "host.offline", host: this.hostId, key: `host.offline:${this.hostId}:${new Date().toISOString()}` });
  }
}
