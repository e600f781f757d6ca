import { randomUUID } from "node:crypto";
import type { Db } from "../../db/client";
import { commands } from "../../db/schema";
import type { Actor } from "../context.server";
import type { ConsoleMetrics } from "./metrics.server";

type Tx = Pick<Db, "insert">;

/** How long a queued command stays worth running when its host is away. */
export const COMMAND_TTL_MS = 24 * 60 * 60 * 1000;

export interface CommandInput {
  hostId: string;
  appId: string | null;
  appName: string | null;
  action: string;
  params?: Record<string, unknown>;
}

/**
 * Writes a command into the outbox (inside the caller's transaction); the hub delivers it. Pass
 * the context's metrics to count it in dcc_commands_enqueued_total.
 */
export async function enqueueCommand(tx: Tx, actor: Actor, c: CommandInput, metrics?: Pick<ConsoleMetrics, "commandEnqueued">): Promise<string> {
  const id = randomUUID();
  const now = Date.now();
  await tx.insert(commands).values({
    id,
    hostId: c.hostId,
    appId: c.appId,
    appName: c.appName,
    action: c.action,
    params: c.params ?? {},
    state: "pending",
    issuedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + COMMAND_TTL_MS).toISOString(),
    createdBy: `${actor.kind}:${actor.id}`,
  });
  metrics?.commandEnqueued(c.action);
  return id;
}

/**
 * Seconds from a command's creation to now. The hub, when it records a command's result, calls
 * `ctx.metrics.observeCommandResult(row.action, outcome, commandAgeSeconds(row.issuedAt))`.
 */
export function commandAgeSeconds(issuedAt: string, now = Date.now()): number {
  return (now - Date.parse(issuedAt)) / 1000;
}
