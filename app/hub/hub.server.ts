// The hub: the console's one long-lived piece. It takes websocket upgrades on /agent (sharing the
// HTTP server), keeps one session per connected host, and is the dispatcher services kick after
// writing a command. It holds nothing that is not also in the database: on a timer it pings every
// socket and drops one that sent nothing for DCC_HOST_SILENT_S (a frozen box, a cut link: its host
// goes offline), polls the outbox for commands other console processes wrote for hosts connected
// here, fails commands unanswered past their deadline, closes revoked hosts, refreshes the presence
// of the hosts it holds and writes usage in batches, and marks hosts offline that a dead console
// process left online.
import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { hostname } from "node:os";
import type { Duplex } from "node:stream";
import { WebSocketServer } from "ws";
import { CLOSE, MAX_MESSAGE_BYTES } from "../../agent/src/contract/protocol";
import type { UsageSample } from "../../agent/src/contract/reports";
import type { ConsoleContext, Dispatcher, LogSink } from "../context.server";
import { placeWaitingApps } from "../services/register.server";
import { runAutoCleanup } from "../services/cleanup.server";
import { consoleKey, type ConsoleKey } from "../services/console-key.server";
import { failOverdueCommands } from "../services/command-answers.server";
import { hostsWithPendingCommands } from "../services/outbox.server";
import { flushUsage } from "../services/reports.server";
import { processStopped, refreshHeldHosts, revokedAmong, sweepStaleHosts, type HostOnline } from "../services/host-presence.server";
import { hubLog, type HubLogger } from "./log.server";
import { PresenceWriter } from "./presence.server";
import { AgentSession, type SessionHost } from "./session.server";

export interface HubOptions {
  /** How often each socket is pinged; default a third of the console's host silence limit. */
  pingIntervalMs?: number;
  /** Outbox poll for commands written by other console processes. */
  pollMs?: number;
  /** Batched writes of usage and last-seen. */
  flushMs?: number;
  /** A connected host's presence (online, held here, last seen) is re-written this often. */
  seenWriteMs?: number;
  /** Hosts left online by a dead (or stalled) process are marked offline after this much silence. */
  staleMs?: number;
  /** How late past its deadline an unanswered command is given up (the agent's own answer first). */
  deadlineGraceMs?: number;
  authTimeoutMs?: number;
  log?: HubLogger;
}

/** What the hub plugs into the server: websocket upgrades on /agent, and a clean stop. */
export interface HubSlot {
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  close(): Promise<void>;
}

export class AgentHub implements HubSlot, Dispatcher, SessionHost {
  readonly processId = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  readonly key: ConsoleKey;
  readonly log: HubLogger;
  readonly authTimeoutMs: number;
  readonly pingIntervalMs: number;
  private readonly silentMs: number;
  private lastSilenceCheck = Date.now();
  private stalledUntil = 0;
  private readonly wss: WebSocketServer;
  /** Ready sessions by host id. */
  private readonly sessions = new Map<string, AgentSession>();
  /** Every open socket, ready or not. */
  private readonly all = new Set<AgentSession>();
  private readonly usage = new Map<string, { hostId: string; sample: UsageSample }>();
  private readonly refusedUsage = new Set<string>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly busy = new Set<string>();
  private readonly presence: PresenceWriter;
  private placement: NodeJS.Timeout | null = null;
  private placing = false;
  private placeAgain = false;
  private closing = false;

  constructor(
    readonly ctx: ConsoleContext,
    private readonly opts: HubOptions = {},
  ) {
    this.key = consoleKey(ctx.config.dataDir);
    this.log = opts.log ?? hubLog;
    this.presence = new PresenceWriter(ctx);
    this.authTimeoutMs = opts.authTimeoutMs ?? 10_000;
    this.silentMs = ctx.config.hostSilentMs;
    this.pingIntervalMs = opts.pingIntervalMs ?? Math.max(1000, Math.floor(this.silentMs / 3));
    this.wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES, perMessageDeflate: false, clientTracking: false });
    this.every(this.pingIntervalMs, "ping", async () => this.pingAll());
    this.every(Math.min(1000, this.pingIntervalMs), "silence", async () => this.dropSilent());
    this.every(2000, "deadlines", () => this.failOverdue());
    this.every(opts.pollMs ?? 1000, "poll", () => this.poll());
    this.every(opts.flushMs ?? 1000, "flush", () => this.flush());
    this.every(5000, "revocations", () => this.closeRevoked());
    this.every(Math.min(30_000, this.staleMs / 2), "sweep", () => this.sweep());
    // Scheduled cleanup of orphans for the hosts held here (checked a few times per interval, at most once a minute).
    this.every(Math.min(60_000, Math.max(1000, (ctx.config.autoCleanupHours * 3_600_000) / 4)), "auto-cleanup", () => this.autoCleanup());
  }

  private get staleMs(): number {
    return this.opts.staleMs ?? Math.max(20_000, 4 * (this.opts.seenWriteMs ?? 5000));
  }

  get connectedHosts(): number {
    return this.sessions.size;
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.closing) {
      socket.end("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n");
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const s = new AgentSession(this, ws, req);
      this.all.add(s);
    });
  }

  kick(hostId: string): void {
    void this.sessions.get(hostId)?.deliver();
  }

  openLogs(hostId: string, req: { app: string; tail: number; follow: boolean }, sink: LogSink): (() => void) | null {
    return this.sessions.get(hostId)?.openLogs(req, sink) ?? null;
  }

  disconnect(hostId: string, reason: string): void {
    for (const s of this.all) if (s.hostId === hostId) s.close(CLOSE.revoked, reason);
  }

  register(s: AgentSession): void {
    const old = this.sessions.get(s.hostId!);
    this.sessions.set(s.hostId!, s);
    if (old && old !== s) old.close(CLOSE.replaced, "replaced by a newer connection of the same host");
  }

  unregister(s: AgentSession): void {
    this.all.delete(s);
    if (s.hostId && this.sessions.get(s.hostId) === s) {
      this.sessions.delete(s.hostId);
      if (!this.closing) s.markOffline().catch((e) => this.log("error", "could not mark host offline", { hostId: s.hostId, error: (e as Error).message }));
    }
  }

  markOnline(entry: HostOnline): Promise<boolean> {
    return this.presence.online(entry);
  }

  requestPlacement(): void {
    if (this.closing) return;
    if (this.placing) {
      this.placeAgain = true;
      return;
    }
    if (this.placement) return;
    this.placement = setTimeout(() => {
      this.placement = null;
      this.placing = true;
      placeWaitingApps(this.ctx)
        .then((hosts) => hosts.forEach((h) => this.kick(h)))
        .catch((e) => this.log("error", "placing waiting apps failed", { error: (e as Error).message }))
        .finally(() => {
          this.placing = false;
          if (this.placeAgain) {
            this.placeAgain = false;
            this.requestPlacement();
          }
        });
    }, 50);
  }

  queueUsage(hostId: string, samples: UsageSample[]): void {
    for (const sample of samples) this.usage.set(`${hostId}\u0000${sample.app}`, { hostId, sample });
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const t of this.timers) clearInterval(t);
    if (this.placement) clearTimeout(this.placement);
    for (const s of this.all) s.close(CLOSE.goingAway, "console shutting down");
    await this.flush().catch(() => {});
    await processStopped(this.ctx, this.processId).catch(() => {});
  }

  private every(ms: number, name: string, fn: () => Promise<void>): void {
    const t = setInterval(() => {
      if (this.busy.has(name)) return;
      this.busy.add(name);
      fn()
        .catch((e) => this.log("error", `hub ${name} failed`, { error: (e as Error).message }))
        .finally(() => this.busy.delete(name));
    }, ms);
    t.unref();
    this.timers.push(t);
  }

  private pingAll(): Promise<void> {
    for (const s of this.all) {
      try {
        s.ws.ping();
      } catch {
        // a socket that cannot send is dropped once it has been silent long enough
      }
    }
    return Promise.resolve();
  }

  /**
   * An open socket that carried nothing (not even a pong) for the silence limit is a dead host. When
   * this process itself was stalled (this check ran late), frames may be waiting unread: silence is
   * then counted from the end of the stall, so a busy console never drops live agents.
   */
  private dropSilent(): Promise<void> {
    const now = Date.now();
    const every = Math.min(1000, this.pingIntervalMs);
    if (now - this.lastSilenceCheck > every + 1000) this.stalledUntil = now;
    this.lastSilenceCheck = now;
    for (const s of this.all) {
      const since = Math.max(s.seenAt, this.stalledUntil);
      if (s.state === "ready" && now - since > this.silentMs) s.terminate(`silent for ${Math.round((now - s.seenAt) / 1000)} s`);
    }
    return Promise.resolve();
  }

  private async failOverdue(): Promise<void> {
    const n = await failOverdueCommands(this.ctx, this.opts.deadlineGraceMs ?? 5000);
    if (n) this.log("warn", "commands given up past their deadline", { count: n });
  }

  private async poll(): Promise<void> {
    if (!this.sessions.size) return;
    for (const hostId of await hostsWithPendingCommands(this.ctx, this.processId)) this.kick(hostId);
  }

  private async flush(): Promise<void> {
    if (this.usage.size) {
      const batch = [...this.usage.values()];
      this.usage.clear();
      for (const r of await flushUsage(this.ctx, batch)) {
        const k = `${r.hostId}\u0000${r.app}`;
        if (this.refusedUsage.has(k)) continue;
        if (this.refusedUsage.size > 10_000) this.refusedUsage.clear();
        this.refusedUsage.add(k);
        this.log("warn", "agent report refused", { hostId: r.hostId, kind: "usage", app: r.app, reason: r.reason });
      }
    }
    const now = Date.now();
    const due: string[] = [];
    const every = this.opts.seenWriteMs ?? 5000;
    for (const [hostId, s] of this.sessions) {
      if (s.state === "ready" && now - s.seenWrittenAt >= every) {
        due.push(hostId);
        s.seenWrittenAt = now;
      }
    }
    if (due.length) await refreshHeldHosts(this.ctx, this.processId, due, new Date(now).toISOString());
  }

  private async closeRevoked(): Promise<void> {
    if (!this.sessions.size) return;
    for (const hostId of await revokedAmong(this.ctx, this.processId)) this.disconnect(hostId, "host revoked");
  }

  private async autoCleanup(): Promise<void> {
    if (!this.sessions.size) return;
    const { queued, failures } = await runAutoCleanup(this.ctx, this.processId);
    for (const hostId of queued) {
      this.log("info", "scheduled cleanup of orphans queued", { hostId });
      this.kick(hostId);
    }
    for (const why of failures) this.log("error", "scheduled cleanup of orphans could not be queued", { error: why });
  }

  private async sweep(): Promise<void> {
    const n = await sweepStaleHosts(this.ctx, this.processId, new Date(Date.now() - this.staleMs).toISOString());
    if (n) this.log("info", "hosts marked offline after silence", { count: n });
  }
}
