// Console-wide logins for private image registries (admin): `{ host, username, password }`, the
// password sealed with the console's secret key and never returned. When a command's image names
// a registry that has a login, the login travels beside the command (app-config.server.ts
// commandSecrets) and the agent hands it to the engine for that pull only.
import { asc, eq } from "drizzle-orm";
import { z } from "zod";
import { RegistryCredentialSchema, RegistryHostSchema } from "../../agent/src/contract/app-config";
import { registryCredentials } from "../../db/schema";
import type { Actor, ConsoleContext } from "../context.server";
import { registryPasswordPurpose } from "./app-config.server";
import { recordAudit } from "./audit.server";
import { ServiceError } from "./errors";
import { parseInput } from "./parse-input.server";
import { seal, secretKey } from "./secret-box.server";

export const RegistrySetInput = RegistryCredentialSchema;
export const RegistryHostInput = z.strictObject({ host: RegistryHostSchema });

export interface RegistryDto {
  host: string;
  username: string;
  hasPassword: true;
  updatedAt: string;
}

export async function listRegistries(ctx: Pick<ConsoleContext, "db">): Promise<RegistryDto[]> {
  const rows = await ctx.db.select().from(registryCredentials).orderBy(asc(registryCredentials.host));
  return rows.map((r) => ({ host: r.host, username: r.username, hasPassword: true, updatedAt: r.updatedAt }));
}

export async function setRegistry(ctx: ConsoleContext, actor: Actor, raw: unknown): Promise<RegistryDto> {
  const input = parseInput(RegistrySetInput, raw);
  const sealed = seal(secretKey(ctx.config), registryPasswordPurpose(input.host), input.password);
  const now = new Date().toISOString();
  await ctx.db.transaction(async (tx) => {
    await tx
      .insert(registryCredentials)
      .values({ host: input.host, username: input.username, passwordSealed: sealed, createdBy: actor.id, updatedAt: now })
      .onConflictDoUpdate({ target: registryCredentials.host, set: { username: input.username, passwordSealed: sealed, updatedAt: now } });
    await recordAudit(tx, actor, { action: "registry.set", target: input.host, detail: { username: input.username } });
  });
  return { host: input.host, username: input.username, hasPassword: true, updatedAt: now };
}

export async function deleteRegistry(ctx: ConsoleContext, actor: Actor, raw: unknown): Promise<{ host: string }> {
  const { host } = parseInput(RegistryHostInput, raw);
  await ctx.db.transaction(async (tx) => {
    const gone = await tx.delete(registryCredentials).where(eq(registryCredentials.host, host)).returning();
    if (!gone.length) throw ServiceError.field("NOT_FOUND", "host", `has no registry login (${host})`);
    await recordAudit(tx, actor, { action: "registry.delete", target: host });
  });
  return { host };
}
