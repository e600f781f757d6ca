// The outbox as the hub reads it: the commands still to deliver, the hosts that have some, and
// delivery attempts. (Commands are written by the use cases, commands.server.ts.)
import { and, eq, inArray, sql } from "drizzle-orm";
import { commands, hosts, type Command } from "../../db/schema";
import type { ConsoleContext } from "../context.server";

type Ctx = Pick<ConsoleContext, "db" | "bus">;

/** Command states that still wait for an agent's answer. */
export const UNFINISHED = ["pending", "delivered"] as const;

export async function unfinishedCommands(ctx: Ctx, hostId: string): Promise<Command[]> {
  return ctx.db
    .select()
    .from(commands)
    .where(and(eq(commands.hostId, hostId), inArray(commands.state, [...UNFINISHED])))
    .orderBy(sql`rowid`);
}

/** Hosts held by this process with commands nobody has picked up (written by other processes). */
export async function hostsWithPendingCommands(ctx: Ctx, processId: string): Promise<string[]> {
  const rows = await ctx.db
    .selectDistinct({ hostId: commands.hostId })
    .from(commands)
    .innerJoin(hosts, eq(hosts.id, commands.hostId))
    .where(and(eq(commands.state, "pending"), eq(hosts.connectedTo, processId)));
  return rows.map((r) => r.hostId);
}

export async function countAttempts(ctx: Ctx, ids: string[]): Promise<void> {
  if (ids.length) await ctx.db.update(commands).set({ attempts: sql`${commands.attempts} + 1` }).where(inArray(commands.id, ids));
}

