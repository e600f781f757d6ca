import { asc, eq } from "drizzle-orm";
import { HostFactsSchema, type HostFacts } from "../../agent/src/contract/facts";
import { hosts, type Host } from "../../db/schema";
import type { ConsoleContext } from "../context.server";
import { ServiceError } from "./errors";

/** The host object of the API: `online` is a boolean, facts are what the agent reported. */
export interface HostDto {
  id: string;
  name: string;
  online: boolean;
  lastSeenAt: string | null;
  address: string | null;
  facts: HostFacts;
  revoked: boolean;
  createdAt: string;
}

export function toHostDto(h: Host): HostDto {
  return {
    id: h.id,
    name: h.name,
    online: h.online && h.revokedAt == null,
    lastSeenAt: h.lastSeenAt,
    address: h.address,
    facts: HostFactsSchema.catch({}).parse(h.facts),
    revoked: h.revokedAt != null,
    createdAt: h.createdAt,
  };
}

export async function listHosts(ctx: Pick<ConsoleContext, "db">): Promise<HostDto[]> {
  const rows = await ctx.db.select().from(hosts).orderBy(asc(hosts.name));
  return rows.map(toHostDto);
}

export async function getHost(ctx: Pick<ConsoleContext, "db">, id: string): Promise<HostDto> {
  const [row] = await ctx.db.select().from(hosts).where(eq(hosts.id, id));
  if (!row) throw ServiceError.field("NOT_FOUND", "id", `does not name a known host (${id})`);
  return toHostDto(row);
}
