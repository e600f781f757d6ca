import { randomUUID } from "node:crypto";
import type { Db } from "../../db/client";
import { commands } from "../../db/schema";
import type { Actor } from "../context.server";

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

/** Writes a command into the outbox (inside the caller's transaction); the hub delivers it. */
export async function enqueueCommand(tx: Tx, actor: Actor, c: CommandInput): Promise<string> {
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
  return id;
}
