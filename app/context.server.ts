// What every request handler and the hub are handed: the process-wide database, configuration,
// in-process change bus and the hub's dispatch slot. Built once in app/server.ts.
import type { LogLine } from "../agent/src/contract/reports";
import type { Db } from "../db/client";
import type { Role } from "../db/roles";
import type { ChangeBus } from "./change-bus.server";
import type { Config } from "./config.server";
import type { LiveChange } from "./live-event.server";
import type { ConsoleMetrics } from "./services/metrics.server";

export { ChangeBus } from "./change-bus.server";

export type ActorKind = "anonymous" | "user" | "token" | "agent" | "system" | "webhook";
export interface Actor {
  kind: ActorKind;
  /** user name, token id, host id or "console". */
  id: string;
  role: Role;
  address?: string;
  /** Set when the actor came from a browser session (SHA-256 of the cookie value). */
  sessionId?: string;
  /** The users row behind a session. */
  userId?: string;
}

/** A change to an app as the live stream carries it (app/live-event.ts). */
export type AppChange = LiveChange;

/** Where an agent's answer to a log request goes. */
export interface LogSink {
  lines(lines: LogLine[]): void;
  /** Called once: the answer is complete or the follow ended; `error` says why when it failed. */
  end(error?: string): void;
}

/** The hub's slot: services call `kick` after committing a command so delivery starts at once. */
export interface Dispatcher {
  kick(hostId: string): void;
  /** Closes the host's socket at once when this process holds it (revocation). */
  disconnect(hostId: string, reason: string): void;
  /**
   * Asks the host's agent for an app's logs (the last `tail` lines; with `follow`, then live ones)
   * when this process holds its socket; null when it does not. Returns a function that stops it.
   */
  openLogs?(hostId: string, req: { app: string; tail: number; follow: boolean }, sink: LogSink): (() => void) | null;
}

export interface ConsoleContext {
  db: Db;
  config: Config;
  bus: ChangeBus;
  dispatcher: Dispatcher;
  /** This process's Prometheus registry and the observe functions (app/services/metrics.server.ts). */
  metrics: ConsoleMetrics;
  /** Secret for CSRF tokens (from DCC_SESSION_SECRET or generated once under DCC_DATA_DIR). */
  sessionKey: Buffer;
}

export const noDispatcher: Dispatcher = { kick() {}, disconnect() {} };

declare module "@remix-run/node" {
  interface AppLoadContext {
    dcc: ConsoleContext;
    clientAddress?: string;
    /** Per-response CSP nonce for Remix's inline scripts. */
    cspNonce?: string;
    /** Aborted when the client's connection closes (reliable, unlike the Request's own signal: see app/server.ts). */
    closed?: AbortSignal;
  }
}
