// The agent's one connection: it dials the console's /agent websocket (it never listens), checks
// that the console holds the pinned key, proves its own identity (or enrols once with a token),
// sends hello, and then carries commands in and reports out. A silent console is dropped within
// 25 s; reconnects use exponential backoff with full jitter.
import { rootCertificates } from "node:tls";
import WebSocket from "ws";
import type { HostFacts } from "./contract/facts";
import {
  CLOSE,
  ConsoleMessageSchema,
  FATAL_CLOSE_CODES,
  MAX_MESSAGE_BYTES,
  PROTOCOL_VERSION,
  closeReason,
  parseMessage,
  publicKeyFingerprint,
  publicKeyFromBase64,
  signAuth,
  signEnroll,
  verifyChallenge,
  type AgentMessage,
  type CommandEnvelope,
  type ConsoleMessage,
} from "./contract/protocol";
import type { InventoryItem } from "./contract/reports";
import { Backoff } from "./backoff";
import type { Logger } from "./log";
import { saveIdentity, type AgentKey, type Identity } from "./state-dir";

export interface ChannelOptions {
  url: string;
  /** Extra trusted CA certificates (PEM) besides the system's. */
  ca?: string;
  stateDir: string;
  agentKey: AgentKey;
  identity: Identity | null;
  enrollToken?: string;
  /** When given, enrolment only completes against a console whose key has this fingerprint. */
  consoleFingerprint?: string;
  name?: string;
  agentVersion: string;
  hello: () => Promise<{ facts: HostFacts; inventory: InventoryItem[] }>;
  onIdentity: (identity: Identity) => void;
  onCommand: (env: CommandEnvelope) => void;
  onLogs?: (req: Extract<ConsoleMessage, { type: "logs" }>) => void;
  onLogsStop?: (req: Extract<ConsoleMessage, { type: "logs-stop" }>) => void;
  // ---- gateway
  onGatewayTokenAnswer?: (msg: Extract<ConsoleMessage, { type: "gateway-token-answer" }>) => void;
  // ---- end gateway
  /** The ready session ended (anything tied to it, such as log follows, should stop). */
  onDisconnect?: () => void;
  onReady: () => void;
  onFatal: (code: number, reason: string) => void;
  log: Logger;
  backoff?: { baseMs: number; capMs: number };
}

type Phase = "challenge" | "enroll" | "auth" | "ready";

export class AgentChannel {
  private ws: WebSocket | null = null;
  private ready = false;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly backoff: Backoff;
  private identity: Identity | null;
  private readonly ca?: string[];

  constructor(private readonly o: ChannelOptions) {
    this.identity = o.identity;
    this.backoff = new Backoff(o.backoff ?? { baseMs: 500, capMs: 30_000 });
    this.ca = o.ca ? [...rootCertificates, o.ca] : undefined;
  }

  get connected(): boolean {
    return this.ready;
  }

  get hostId(): string | null {
    return this.identity?.hostId ?? null;
  }

  start(): void {
    void this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      ws.once("close", () => resolve());
      ws.close(CLOSE.goingAway, "agent shutting down");
      setTimeout(() => (ws.terminate(), resolve()), 2000).unref();
    });
  }

  /** Sends when the session is up; returns false (message dropped) otherwise. */
  send(msg: AgentMessage): boolean {
    const ws = this.ws;
    if (!this.ready || !ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(msg));
    return true;
  }

  private schedule(): void {
    if (this.stopped) return;
    const delay = this.backoff.next();
    this.o.log("info", "reconnecting", { inMs: delay });
    this.timer = setTimeout(() => void this.connect(), delay);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const { log } = this.o;
    let hello: Awaited<ReturnType<ChannelOptions["hello"]>>;
    try {
      hello = await this.o.hello();
    } catch (e) {
      log("warn", "could not gather facts and inventory", { error: (e as Error).message });
      hello = { facts: { agentVersion: this.o.agentVersion }, inventory: [] };
    }
    if (this.stopped) return;

    log("info", "connecting", { url: this.o.url });
    const ws = new WebSocket(this.o.url, {
      maxPayload: MAX_MESSAGE_BYTES,
      handshakeTimeout: 10_000,
      perMessageDeflate: false,
      ...(this.ca ? { ca: this.ca } : {}),
    });
    this.ws = ws;
    let phase: Phase = "challenge";
    let nonce = "";
    let challengeSig = "";
    let closedByUs: string | null = null;
    let silentMs = 25_000;
    let lastHeard = Date.now();
    const watchdog = setInterval(() => {
      if (Date.now() - lastHeard > silentMs) {
        log("warn", "console silent: dropping the connection", { silentMs });
        ws.terminate();
      }
    }, 2500);

    const abort = (code: number, why: string) => {
      closedByUs = why;
      log("error", why);
      ws.close(code, closeReason(why));
    };
    const sendRaw = (msg: AgentMessage) => ws.send(JSON.stringify(msg));
    const sendHello = () =>
      sendRaw({ type: "hello", protocol: PROTOCOL_VERSION, agentVersion: this.o.agentVersion, facts: hello.facts, inventory: hello.inventory });

    const onMessage = (msg: ConsoleMessage) => {
      if (phase === "challenge") {
        if (msg.type !== "challenge") return abort(CLOSE.protocolError, `expected a challenge, got ${msg.type}`);
        if (msg.protocol !== PROTOCOL_VERSION) log("warn", "console speaks another protocol version", { console: msg.protocol, agent: PROTOCOL_VERSION });
        nonce = msg.nonce;
        if (this.identity) {
          if (!verifyChallenge(nonce, msg.sig, publicKeyFromBase64(this.identity.consolePublicKey))) {
            return abort(CLOSE.authFailed, "the console did not prove it holds the pinned console key; not authenticating");
          }
          sendRaw({ type: "auth", hostId: this.identity.hostId, sig: signAuth(nonce, this.identity.hostId, this.o.agentKey.privateKey) });
          sendHello();
          phase = "auth";
          return;
        }
        if (!this.o.enrollToken) return abort(CLOSE.authFailed, "not enrolled and no enrolment token given");
        // The signature over the nonce is checked once the console's key arrives with `enrolled`.
        challengeSig = msg.sig;
        sendRaw({
          type: "enroll",
          token: this.o.enrollToken,
          publicKey: this.o.agentKey.publicKey,
          ...(this.o.name ? { name: this.o.name } : {}),
          sig: signEnroll(nonce, this.o.agentKey.publicKey, this.o.agentKey.privateKey),
        });
        phase = "enroll";
        return;
      }
      if (phase === "enroll") {
        if (msg.type !== "enrolled") return abort(CLOSE.protocolError, `expected enrolled, got ${msg.type}`);
        const fp = publicKeyFingerprint(msg.consolePublicKey);
        if (this.o.consoleFingerprint && fp !== this.o.consoleFingerprint) {
          // Not the console the operator meant: stop rather than retry against it.
          abort(CLOSE.enrollRefused, `console key ${fp} does not match --console-fingerprint ${this.o.consoleFingerprint}; not pinning it`);
          this.stopped = true;
          return this.o.onFatal(CLOSE.enrollRefused, "console key fingerprint mismatch");
        }
        if (!verifyChallenge(nonce, challengeSig, publicKeyFromBase64(msg.consolePublicKey))) {
          return abort(CLOSE.authFailed, "the console's challenge signature does not match the key it sent");
        }
        const identity: Identity = { hostId: msg.hostId, consolePublicKey: msg.consolePublicKey, consoleUrl: this.o.url, enrolledAt: new Date().toISOString() };
        saveIdentity(this.o.stateDir, identity);
        this.identity = identity;
        log("info", "enrolled", { hostId: msg.hostId, consoleKey: fp });
        this.o.onIdentity(identity);
        sendHello();
        phase = "auth";
        return;
      }
      if (phase === "auth") {
        if (msg.type !== "welcome") return abort(CLOSE.protocolError, `expected welcome, got ${msg.type}`);
        if (msg.hostId !== this.identity?.hostId) return abort(CLOSE.protocolError, "welcome names another host");
        silentMs = msg.pingIntervalMs + 10_000;
        phase = "ready";
        this.ready = true;
        this.backoff.reset();
        log("info", "connected", { hostId: msg.hostId });
        this.o.onReady();
        return;
      }
      if (msg.type === "command") return this.o.onCommand(msg);
      if (msg.type === "logs") return this.o.onLogs?.(msg);
      if (msg.type === "logs-stop") return this.o.onLogsStop?.(msg);
      if (msg.type === "gateway-token-answer") return this.o.onGatewayTokenAnswer?.(msg);
      abort(CLOSE.protocolError, `unexpected ${msg.type} after welcome`);
    };

    ws.on("ping", () => (lastHeard = Date.now()));
    ws.on("message", (data, isBinary) => {
      lastHeard = Date.now();
      if (isBinary) return abort(CLOSE.unsupportedData, "binary messages are not part of the protocol");
      const parsed = parseMessage(ConsoleMessageSchema, data.toString());
      if (!parsed.ok) return abort(CLOSE.protocolError, parsed.error);
      try {
        onMessage(parsed.msg);
      } catch (e) {
        abort(CLOSE.protocolError, `could not handle ${parsed.msg.type}: ${(e as Error).message}`);
      }
    });
    ws.on("error", (e) => log("warn", "connection error", { error: e.message }));
    ws.on("close", (code, reasonBuf) => {
      clearInterval(watchdog);
      const wasReady = this.ready;
      if (this.ws === ws) {
        this.ws = null;
        this.ready = false;
      }
      const reason = reasonBuf.toString();
      log(wasReady ? "warn" : "info", "disconnected", { code, reason });
      if (wasReady) this.o.onDisconnect?.();
      if (this.stopped) return;
      if (closedByUs === null && FATAL_CLOSE_CODES.has(code)) return this.o.onFatal(code, reason);
      this.schedule();
    });
  }
}
