// What every request handler and the hub are handed: the process-wide database, configuration,
// in-process change bus and the hub's dispatch slot. Built once in app/server.ts.
import { EventEmitter } from "node:events";
import type { Db } from "../db/client";
import type { Config } from "./config.server";

export type ActorKind = "anonymous" | "user" | "token" | "agent" | "system";
export interface Actor {
  kind: ActorKind;
  /** user name, token id, host id or "console". */
  id: string;
  role: "admin" | "operator" | "viewer";
  address?: string;
}

/** A change to an app as the live stream carries it: `{ id, type, app, ...changedFields }`. */
export interface AppChange {
  id: number;
  type: string;
  app: string;
  [field: string]: unknown;
}

/** In-process fan-out of changes; the event table carries them to other console processes. */
export class ChangeBus extends EventEmitter {
  constructor() {
    super();
    this.setMaxListeners(0);
  }
  publish(change: AppChange): void {
    this.emit("change", change);
  }
  subscribe(fn: (change: AppChange) => void): () => void {
    this.on("change", fn);
    return () => this.off("change", fn);
  }
}

/** The hub's slot: services call `kick` after committing a command so delivery starts at once. */
export interface Dispatcher {
  kick(hostId: string): void;
}

export interface ConsoleContext {
  db: Db;
  config: Config;
  bus: ChangeBus;
  dispatcher: Dispatcher;
}

export const noDispatcher: Dispatcher = { kick() {} };

declare module "@remix-run/node" {
  interface AppLoadContext {
    dcc: ConsoleContext;
    clientAddress?: string;
  }
}
