import { randomUUID } from "node:crypto";
import { and, eq, isNull } from "drizzle-orm";
import type { Db } from "../../db/client";
import { placeholders, prepared } from "../../db/prepared";
import { commands, type Command } from "../../db/schema";
import type { Config } from "../config.server";
import type { Actor } from "../context.server";
import type { ConsoleMetrics } from "./metrics.server";

type Tx = Pick<Db, "insert">;

const insertCommand = prepared((db: Tx) =>
  db.insert(commands).values(placeholders(["id", "hostId", "appId", "appName", "action", "params", "state", "issuedAt", "expiresAt", "createdBy"])),
);

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
  await insertCommand(tx).run({
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

/** Actions that may clone, pull and start a container: they get the long (deploy) deadline. */
const DEPLOY_ACTIONS = new Set(["provision", "reinstall", "update", "start", "restart", "prepull"]);

export function deadlineMs(config: Pick<Config, "deadlines">, action: string): number {
  return DEPLOY_ACTIONS.has(action) ? config.deadlines.deployMs : config.deadlines.actionMs;
}

/**
 * The command's deadline, fixed on its first send: now + the action's allowance. Re-sends read the
 * stored value, so every delivery of one command carries the same signed bytes.
 */
export async function commandDeadline(ctx: { db: Db; config: Pick<Config, "deadlines"> }, c: Pick<Command, "id" | "action">): Promise<string> {
  const at = new Date(Date.now() + deadlineMs(ctx.config, c.action)).toISOString();
  const set = await ctx.db
    .update(commands)
    .set({ deadlineAt: at })
    .where(and(eq(commands.id, c.id), isNull(commands.deadlineAt)))
    .returning({ deadlineAt: commands.deadlineAt });
  if (set.length) return at;
  const [row] = await ctx.db.select({ deadlineAt: commands.deadlineAt }).from(commands).where(eq(commands.id, c.id));
  return row?.deadlineAt ?? at;
}
