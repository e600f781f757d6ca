// Apps: the inputs and the flat app object, list, get, the deploy spec, update. Registration is in
// register.server.ts.
import { and, asc, eq, sql, type SQL } from "drizzle-orm";
import { z } from "zod";
import { IdleStopMinutesSchema, type DeploySpec } from "../../agent/src/contract/spec";
import { GatewayFactsSchema, gatewayUrl } from "../../agent/src/contract/gateway";
import {
  AppNameSchema,
  CommandSchema,
  GpuRequirementSchema,
  ImageSchema,
  PortSchema,
  type GpuRequirement,
} from "../../agent/src/contract/validation";
import { GitRefSchema } from "../../agent/src/contract/git-ref";
import type { Db } from "../../db/client";
import { APP_STATUSES, apps, hosts, marketplaceTemplates, type App, type AppStatus, type MarketplaceTemplate, type StartupProgress } from "../../db/schema";
import type { Actor, AppChange, ConsoleContext } from "../context.server";
import { queuedState, writeAppState } from "./app-status.server";
import { recordAudit } from "./audit.server";
import { enqueueCommand } from "./commands.server";
import { ServiceError } from "./errors";
import { publishAll, recordEvent } from "./events.server";
import { assertPortFree, conflictOf, holdGpus, hostCandidates, requireAppRow } from "./app-writes.server";
import { assignGpus } from "./placement.server";
import { AppConfigFields, checkConfig, planSecretWrites, sealedSecrets, writeSecretRows, type DeclaredSecret } from "./app-config.server";
import { STALL_DEFAULT_S, StartupStallSchema } from "../../agent/src/contract/models";

const HostIdSchema = z.string().min(1, { error: "is required" }).max(64).regex(/^[A-Za-z0-9_-]+$/, { error: "is not a host id" });

/** Settings apps.create and apps.update both take, with the same rules. */
const AppSettingsFields = {
  /** Fetch the repository's git submodules (one level, each URL checked like the repository's). */
  gitSubmodules: z.boolean({ error: "must be true or false" }).optional(),
  // env, secrets, git credential, resources, health path
  ...AppConfigFields,
  /** Mount the host's shared model store at /models. */
  sharedModels: z.boolean({ error: "must be true or false" }).optional(),
  startupStallSeconds: StartupStallSchema.optional(),
  /** Behind a gateway, publish the port on every interface anyway. */
  publicPort: z.boolean({ error: "must be true or false" }).optional(),
  idleStopMinutes: IdleStopMinutesSchema.nullable().optional(),
};

export const AppCreateInput = z.strictObject({
  name: AppNameSchema,
  // The full repository rule depends on configuration (insecure switch, host allow-list); it is
  // applied to the resolved spec below. Here only the type is checked.
  repository: z.string({ error: "must be a string" }).optional(),
  startCommand: CommandSchema.optional(),
  port: PortSchema.optional(),
  templateId: AppNameSchema.optional(),
  hostId: HostIdSchema.optional(),
  image: ImageSchema.optional(),
  installCommand: CommandSchema.optional(),
  gpu: GpuRequirementSchema.optional(),
  gitRef: GitRefSchema.optional(),
  ...AppSettingsFields,
});
export type AppCreateInput = z.infer<typeof AppCreateInput>;

export const AppUpdateInput = z.strictObject({
  name: AppNameSchema,
  startCommand: CommandSchema.optional(),
  port: PortSchema.optional(),
  image: ImageSchema.nullable().optional(),
  installCommand: CommandSchema.nullable().optional(),
  gpu: GpuRequirementSchema.optional(),
  // null goes back to the repository's default branch; a change redeploys the code.
  gitRef: GitRefSchema.nullable().optional(),
  ...AppSettingsFields,
});
export type AppUpdateInput = z.infer<typeof AppUpdateInput>;

export const AppNameInput = z.strictObject({ name: AppNameSchema });

export const AppListInput = z
  .strictObject({
    status: z.enum(APP_STATUSES).optional(),
    hostId: HostIdSchema.optional(),
    search: z.string().max(63).optional(),
  })
  .optional();

/** The flat app object every API answer and page uses. */
export interface AppDto {
  name: string;
  repository: string;
  startCommand: string;
  installCommand: string | null;
  port: number;
  hostId: string | null;
  hostName: string | null;
  /** False while the app's host is offline or revoked: a grey light, health "unknown", the last known status. */
  hostOnline: boolean;
  status: AppStatus;
  health: App["health"];
  phase: string | null;
  lastError: string | null;
  commitSha: string | null;
  /** Branch, tag or commit the app deploys; null: the repository's default branch. */
  gitRef: string | null;
  gitSubmodules: boolean;
  templateId: string | null;
  image: string | null;
  gpu: GpuRequirement | null;
  gpuDevices: string[];
  usage: Record<string, number> | null;
  /** When the status last changed: uptime while RUNNING. */
  statusSince: string | null;
  // ---- app configuration: env is readable; secrets and the git credential are write-only
  env: Record<string, string>;
  secretNames: string[];
  hasGitCredential: boolean;
  resources: { memoryMiB?: number; cpus?: number };
  healthPath: string;
  // ----
  // ---- shared model store, startup watching
  sharedModels: boolean;
  startupStallSeconds: number;
  /** While STARTING: the download the app's output shows; null otherwise. */
  progress: StartupProgress | null;
  // ---- end
  // ---- gateway
  publicPort: boolean;
  idleStopMinutes: number | null;
  /** Where a person opens the app: https://<app>.<domain> behind the host's gateway, else null (the raw port). */
  url: string | null;
  // ---- end gateway
  createdAt: string;
  updatedAt: string;
}

/** The gateway a host reported in its facts, or null. */
export function hostGateway(facts: unknown): { domain: string; httpsPort: number } | null {
  const reported = (facts as { gateway?: unknown } | null)?.gateway;
  // Most hosts run no gateway: no parse (and no error object) for them.
  if (reported == null) return null;
  const g = GatewayFactsSchema.safeParse(reported);
  return g.success ? { domain: g.data.domain, httpsPort: g.data.httpsPort } : null;
}

export function toAppDto(row: App, hostName: string | null = null, hostOnline = false, hostFacts: unknown = null): AppDto {
  const gw = hostGateway(hostFacts);
  return {
    name: row.name,
    repository: row.repository,
    startCommand: row.startCommand,
    installCommand: row.installCommand,
    port: row.port,
    hostId: row.hostId,
    hostName,
    hostOnline,
    status: row.status,
    health: hostOnline ? row.health : "unknown",
    phase: row.phase,
    lastError: row.lastError,
    commitSha: row.commitSha,
    gitRef: row.gitRef ?? null,
    gitSubmodules: Boolean(row.gitSubmodules),
    templateId: row.templateId,
    image: row.image,
    gpu: row.gpu ?? null,
    gpuDevices: row.gpuDevices ?? [],
    usage: row.usage ?? null,
    statusSince: row.statusSince ?? null,
    env: row.env ?? {},
    secretNames: row.secretNames ?? [],
    hasGitCredential: Boolean(row.gitCredentialSealed),
    resources: row.resources ?? {},
    healthPath: row.healthPath ?? "/",
    sharedModels: row.sharedModels,
    startupStallSeconds: row.startupStallSeconds ?? STALL_DEFAULT_S,
    progress: row.status === "STARTING" ? (row.progress ?? null) : null,
    publicPort: row.publicPort ?? false,
    idleStopMinutes: row.idleStopMinutes ?? null,
    url: gw ? gatewayUrl(row.name, gw) : null,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

import { parseInput } from "./parse-input.server";

export { parseInput };

const appColumns = { app: apps, hostName: hosts.name, hostFacts: hosts.facts, hostOnline: sql<number>`coalesce(${hosts.online} = 1 AND ${hosts.revokedAt} IS NULL, 0)` };

export async function listApps(ctx: Pick<ConsoleContext, "db">, filter: z.infer<typeof AppListInput>): Promise<AppDto[]> {
  const where: SQL[] = [];
  if (filter?.status) where.push(eq(apps.status, filter.status));
  if (filter?.hostId) where.push(eq(apps.hostId, filter.hostId));
  if (filter?.search) where.push(sql`instr(${apps.name}, ${filter.search}) > 0`);
  const rows = await ctx.db
    .select(appColumns)
    .from(apps)
    .leftJoin(hosts, eq(apps.hostId, hosts.id))
    .where(where.length ? and(...where) : undefined)
    .orderBy(asc(apps.name));
  return rows.map((r) => toAppDto(r.app, r.hostName, Boolean(r.hostOnline), r.hostFacts));
}

export async function findApp(db: Db, name: string): Promise<AppDto | null> {
  const [r] = await db.select(appColumns).from(apps).leftJoin(hosts, eq(apps.hostId, hosts.id)).where(eq(apps.name, name));
  return r ? toAppDto(r.app, r.hostName, Boolean(r.hostOnline), r.hostFacts) : null;
}

export async function requireApp(db: Db, name: string): Promise<AppDto> {
  const app = await findApp(db, name);
  if (!app) throw ServiceError.field("NOT_FOUND", "name", `does not name an existing app (${name})`);
  return app;
}

export async function getApp(ctx: Pick<ConsoleContext, "db">, name: string): Promise<AppDto> {
  return requireApp(ctx.db, name);
}

/**
 * The spec a provision / update / reinstall command carries, resolved from the app row:
 * image = app > template > the console's base image; capabilities and kept paths from the template.
 */
export async function buildDeploySpec(ctx: Pick<ConsoleContext, "db" | "config">, row: App): Promise<DeploySpec> {
  const [tpl] = row.templateId
    ? await ctx.db.select().from(marketplaceTemplates).where(eq(marketplaceTemplates.slug, row.templateId))
    : [];
  return deploySpecOf(ctx.config, row, tpl ?? null);
}

/** The same, with the app's template (or null) already at hand. */
export function deploySpecOf(config: Pick<ConsoleContext["config"], "baseImage">, row: App, tpl: MarketplaceTemplate | null): DeploySpec {
  return {
    appId: row.id,
    name: row.name,
    repository: row.repository,
    startCommand: row.startCommand,
    installCommand: row.installCommand,
    port: row.port,
    image: row.image ?? tpl?.image ?? config.baseImage,
    gpuDevices: row.gpuDevices ?? [],
    capAdd: (tpl?.capAdd ?? []) as DeploySpec["capAdd"],
    keepPaths: tpl?.keepPaths ?? [],
    // Only when set, so that the specs of apps without them read as before.
    ...(row.gitRef ? { gitRef: row.gitRef } : {}),
    ...(row.gitSubmodules ? { gitSubmodules: true } : {}),
    env: row.env ?? {},
    secretNames: row.secretNames ?? [],
    secretsVersion: row.secretsVersion ?? null,
    resources: row.resources ?? {},
    healthPath: row.healthPath ?? "/",
    // The template says how its app finds the store; an app without a template just gets /models.
    modelStore: row.sharedModels ? (tpl?.modelStore ?? { args: [], config: null }) : null,
    startupStallSeconds: row.startupStallSeconds ?? STALL_DEFAULT_S,
    gpuMinMemoryMiB: row.gpu?.minMemoryMiB ?? null,
    publicPort: row.publicPort ?? false,
    idleStopMinutes: row.idleStopMinutes ?? null,
  };
}

export async function updateApp(ctx: ConsoleContext, actor: Actor, raw: unknown): Promise<AppDto> {
  const input = parseInput(AppUpdateInput, raw);
  const { db } = ctx;
  const row = await requireAppRow(db, input.name);

  const next = {
    startCommand: input.startCommand ?? row.startCommand,
    port: input.port ?? row.port,
    image: input.image === undefined ? row.image : input.image,
    installCommand: input.installCommand === undefined ? row.installCommand : input.installCommand,
    gpu: input.gpu ?? row.gpu ?? undefined,
    gitRef: input.gitRef === undefined ? row.gitRef : input.gitRef,
    gitSubmodules: input.gitSubmodules ?? row.gitSubmodules,
    env: input.env ?? row.env,
    resources: input.resources ?? row.resources,
    healthPath: input.healthPath ?? row.healthPath,
    sharedModels: input.sharedModels ?? row.sharedModels,
    startupStallSeconds: input.startupStallSeconds ?? row.startupStallSeconds,
    publicPort: input.publicPort ?? row.publicPort,
    idleStopMinutes: input.idleStopMinutes === undefined ? row.idleStopMinutes : input.idleStopMinutes,
  };
  const declared = await declaredSecrets(db, row.templateId);
  checkConfig(input, { env: next.env, existingSecrets: row.secretNames, declared, template: row.templateId ?? undefined });
  const secretPlan = planSecretWrites(ctx, row.id, row, input, await sealedSecrets(db, row.id));
  const changed: Record<string, unknown> = Object.fromEntries(
    Object.entries(next).filter(([k, v]) => JSON.stringify(v ?? null) !== JSON.stringify((row as Record<string, unknown>)[k] ?? null)),
  );
  // Secret changes are named, never their values.
  if (secretPlan.summary.secretsSet.length || secretPlan.summary.secretsRemoved.length) changed.secrets = true;
  if (secretPlan.summary.gitCredential) changed.gitCredential = true;
  if (Object.keys(changed).length === 0) return requireApp(db, row.name);
  if (changed.port !== undefined) await assertPortFree(db, row.hostId, next.port, { exceptName: row.name });

  let gpuDevices = row.gpuDevices ?? [];
  if (changed.gpu !== undefined && row.hostId) {
    const [host] = await hostCandidates(db, row.hostId);
    if (host) {
      const a = assignGpus(host.facts, host.heldGpus.filter((d) => !gpuDevices.includes(d)), next.gpu);
      if ("reason" in a) throw ServiceError.field("BAD_REQUEST", "gpu", `cannot be met on this host: ${a.reason}`);
      gpuDevices = a.devices;
    }
  }

  const changes: AppChange[] = [];
  const [host] = row.hostId ? await db.select({ online: hosts.online }).from(hosts).where(eq(hosts.id, row.hostId)) : [];
  try {
    await db.transaction(async (tx) => {
      const [updated] = await tx
        .update(apps)
        .set({ ...next, ...secretPlan.columns, gpu: next.gpu ?? null, gpuDevices, updatedAt: new Date().toISOString() })
        .where(eq(apps.id, row.id))
        .returning();
      await writeSecretRows(tx, row.id, secretPlan);
      if (changed.gpu !== undefined) await holdGpus(tx, row.id, row.hostId, gpuDevices);
      if (row.hostId) {
        // Another ref or submodule choice means other code: a reinstall fetches it (untracked files kept).
        const action = changed.gitRef !== undefined || changed.gitSubmodules !== undefined ? "reinstall" : "update";
        const params = { spec: await buildDeploySpec(ctx, updated), ...(action === "reinstall" ? { clean: false } : {}) };
        await enqueueCommand(tx, actor, { hostId: row.hostId, appId: row.id, appName: row.name, action, params }, ctx.metrics);
        const change = await writeAppState(tx, updated, queuedState(action, host?.online ?? false, row.status), { type: "action", data: { action } });
        if (change) changes.push(change);
      }
      changes.push(await recordEvent(tx, { appId: row.id, appName: row.name, type: "updated", data: { changed: Object.keys(changed) } }));
      await recordAudit(tx, actor, { action: "app.update", target: row.name, detail: { changed: Object.keys(changed), ...secretSummary(secretPlan.summary) } });
    });
  } catch (e) {
    throw conflictOf(e) ?? e;
  }
  publishAll(ctx, changes);
  if (row.hostId) ctx.dispatcher.kick(row.hostId);
  return requireApp(db, row.name);
}


/** A template's declared secrets (none without a template). */
export async function declaredSecrets(db: Db, templateId: string | null): Promise<DeclaredSecret[]> {
  if (!templateId) return [];
  const [t] = await db.select({ secrets: marketplaceTemplates.secrets }).from(marketplaceTemplates).where(eq(marketplaceTemplates.slug, templateId));
  return t?.secrets ?? [];
}

/**
 * What an audit entry says about secret writes: names only, and only when something changed. The
 * keys avoid the words the audit log masks (a list of names is not a value).
 */
export function secretSummary(s: { secretsSet: string[]; secretsRemoved: string[]; gitCredential?: "set" | "removed" }): Record<string, unknown> {
  const w: Record<string, unknown> = {};
  if (s.secretsSet.length) w.set = s.secretsSet;
  if (s.secretsRemoved.length) w.removed = s.secretsRemoved;
  if (s.gitCredential) w.gitLogin = s.gitCredential;
  return Object.keys(w).length ? { writeOnly: w } : {};
}
