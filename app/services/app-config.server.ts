// An app's configuration: environment variables (plain, readable), secrets and the git credential
// (write-only, sealed with the console's secret key; reads give names and a flag), resource
// limits and the probe path. Secret values leave the database only when a command is sent
// (commandSecrets, called by the hub), never into a row, event, audit entry or error text.
import { randomUUID } from "node:crypto";
import { and, eq, inArray } from "drizzle-orm";
import { z } from "zod";
import {
  EnvSchema,
  GitCredentialSchema,
  HealthPathSchema,
  ResourcesSchema,
  SecretsInputSchema,
  registryOf,
  type GitCredential,
} from "../../agent/src/contract/app-config";
import type { CommandSecrets } from "../../agent/src/contract/command-secrets";
import type { Db } from "../../db/client";
import { appSecrets, apps, registryCredentials, type App } from "../../db/schema";
import type { ConsoleContext } from "../context.server";
import { ServiceError } from "./errors";
import { open, seal, secretKey, unseal } from "./secret-box.server";

/** The configuration fields apps.create / apps.update / apps.apply take. */
export const AppConfigFields = {
  env: EnvSchema.optional(),
  secrets: SecretsInputSchema.optional(),
  gitCredential: GitCredentialSchema.nullable().optional(),
  resources: ResourcesSchema.optional(),
  healthPath: HealthPathSchema.optional(),
};
export type AppConfigInput = {
  env?: Record<string, string>;
  secrets?: Record<string, string | null>;
  gitCredential?: GitCredential | null;
  resources?: z.infer<typeof ResourcesSchema>;
  healthPath?: string;
};

/** A template's declared secret. */
export interface DeclaredSecret {
  name: string;
  description: string;
  required: boolean;
}

const secretPurpose = (appId: string, name: string) => `app-secret:${appId}:${name}`;
const gitPurpose = (appId: string) => `git-credential:${appId}`;
const registryPurpose = (host: string) => `registry:${host}`;

/**
 * Checks across fields (each field's own rules are in the schemas): a name is either plain env or
 * a secret, and a template's required secrets must be given. Throws naming every bad field.
 */
export function checkConfig(input: AppConfigInput, ctx: { env: Record<string, string>; existingSecrets: string[]; declared: DeclaredSecret[]; template?: string }): void {
  const fields: Record<string, string> = {};
  const secretsAfter = new Set(ctx.existingSecrets);
  for (const [k, v] of Object.entries(input.secrets ?? {})) {
    if (v === null) secretsAfter.delete(k);
    else secretsAfter.add(k);
  }
  for (const k of secretsAfter) {
    if (Object.hasOwn(ctx.env, k)) fields[`secrets.${k}`] = "is also set as a plain environment variable (env); use one or the other";
  }
  for (const d of ctx.declared) {
    if (d.required && !secretsAfter.has(d.name)) fields[`secrets.${d.name}`] = `is required${ctx.template ? ` by template ${ctx.template}` : ""}: ${d.description}`;
  }
  if (Object.keys(fields).length) throw ServiceError.invalid(fields);
}

export interface SecretWrites {
  /** Row columns to set. */
  columns: Pick<App, "secretNames" | "secretsVersion" | "gitCredentialSealed">;
  /** Sealed rows to upsert, names to delete. */
  upsert: { name: string; sealed: string }[];
  remove: string[];
  /** For the audit entry: names only. */
  summary: { secretsSet: string[]; secretsRemoved: string[]; gitCredential?: "set" | "removed" };
  changed: boolean;
}

/** The app's sealed secrets by name (to tell a new value from the same one given again). */
export async function sealedSecrets(db: Db, appId: string): Promise<Map<string, string>> {
  const rows = await db.select({ name: appSecrets.name, sealed: appSecrets.sealed }).from(appSecrets).where(eq(appSecrets.appId, appId));
  return new Map(rows.map((r) => [r.name, r.sealed]));
}

/**
 * Seals what the input sets; nothing is written yet (the caller's transaction applies it). A value
 * given again unchanged is no change, so apps.apply with the same secrets stays idempotent.
 */
export function planSecretWrites(
  ctx: Pick<ConsoleContext, "config">,
  appId: string,
  current: Pick<App, "secretNames" | "secretsVersion" | "gitCredentialSealed">,
  input: Pick<AppConfigInput, "secrets" | "gitCredential">,
  sealedNow: Map<string, string> = new Map(),
): SecretWrites {
  const key = secretKey(ctx.config);
  const names = new Set(current.secretNames ?? []);
  const upsert: SecretWrites["upsert"] = [];
  const remove: string[] = [];
  for (const [name, value] of Object.entries(input.secrets ?? {})) {
    if (value === null) {
      if (names.delete(name)) remove.push(name);
    } else {
      const old = sealedNow.get(name);
      if (old !== undefined && open(key, secretPurpose(appId, name), old) === value) continue;
      names.add(name);
      upsert.push({ name, sealed: seal(key, secretPurpose(appId, name), value) });
    }
  }
  let gitCredentialSealed = current.gitCredentialSealed;
  let git: "set" | "removed" | undefined;
  if (input.gitCredential === null && current.gitCredentialSealed) {
    gitCredentialSealed = null;
    git = "removed";
  } else if (input.gitCredential && !sameCredential(key, appId, current.gitCredentialSealed, input.gitCredential)) {
    gitCredentialSealed = seal(key, gitPurpose(appId), JSON.stringify(input.gitCredential));
    git = "set";
  }
  const changed = upsert.length > 0 || remove.length > 0 || git !== undefined;
  return {
    columns: { secretNames: [...names].sort(), secretsVersion: changed ? randomUUID() : current.secretsVersion, gitCredentialSealed },
    upsert,
    remove,
    summary: { secretsSet: upsert.map((u) => u.name), secretsRemoved: remove, ...(git ? { gitCredential: git } : {}) },
    changed,
  };
}

function sameCredential(key: Buffer, appId: string, sealed: string | null, given: GitCredential): boolean {
  const old = sealed ? open(key, gitPurpose(appId), sealed) : null;
  return old !== null && old === JSON.stringify(given);
}

/** Applies a plan's rows inside the caller's transaction (the app row exists). */
export async function writeSecretRows(tx: Pick<Db, "insert" | "delete">, appId: string, plan: SecretWrites): Promise<void> {
  const now = new Date().toISOString();
  for (const u of plan.upsert) {
    await tx
      .insert(appSecrets)
      .values({ appId, name: u.name, sealed: u.sealed, updatedAt: now })
      .onConflictDoUpdate({ target: [appSecrets.appId, appSecrets.name], set: { sealed: u.sealed, updatedAt: now } });
  }
  if (plan.remove.length) await tx.delete(appSecrets).where(and(eq(appSecrets.appId, appId), inArray(appSecrets.name, plan.remove)));
}

/**
 * The values a command needs, resolved when it is sent (never stored with it): the app's secrets
 * its spec names, its git credential, and a registry login for its image. null when it needs none.
 * Throws (naming no value) when a sealed value does not open with this console's key.
 */
export async function commandSecrets(
  ctx: Pick<ConsoleContext, "db" | "config">,
  command: { id: string; hostId: string; appId: string | null; params: Record<string, unknown> },
): Promise<CommandSecrets | null> {
  const spec = command.params.spec as { secretNames?: string[]; image?: string } | undefined;
  const image = spec?.image ?? (typeof command.params.image === "string" ? command.params.image : undefined);
  if (!spec && !image) return null;
  const key = secretKey(ctx.config);
  const out: CommandSecrets = { commandId: command.id, hostId: command.hostId, values: {} };
  if (spec && command.appId) {
    const [row] = await ctx.db.select({ git: apps.gitCredentialSealed }).from(apps).where(eq(apps.id, command.appId));
    const names = spec.secretNames ?? [];
    if (names.length) {
      const rows = await ctx.db.select().from(appSecrets).where(and(eq(appSecrets.appId, command.appId), inArray(appSecrets.name, names)));
      for (const r of rows) out.values[r.name] = unseal(key, secretPurpose(command.appId, r.name), r.sealed);
    }
    if (row?.git) out.git = GitCredentialSchema.parse(JSON.parse(unseal(key, gitPurpose(command.appId), row.git)));
  }
  const host = image ? registryOf(image) : null;
  if (host) {
    const [r] = await ctx.db.select().from(registryCredentials).where(eq(registryCredentials.host, host));
    const password = r ? open(key, registryPurpose(host), r.passwordSealed) : null;
    if (r && password !== null) out.registry = { host, username: r.username, password };
  }
  // A command with a spec always carries a bundle (maybe empty): the agent then makes the app's
  // secret files match it exactly. Host-wide commands carry one only for a registry login.
  if (!spec && !out.registry) return null;
  return out;
}

// ---------------------------------------------------------------- registry credentials (admin)

export const registryPasswordPurpose = registryPurpose;
