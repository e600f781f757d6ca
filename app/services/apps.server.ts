// Apps use cases: list, get, register (validate, place, outbox, audit), update.
import { randomUUID } from "node:crypto";
import { and, asc, eq, isNull, ne, sql, type SQL } from "drizzle-orm";
import { z } from "zod";
import { HostFactsSchema } from "../../agent/src/contract/facts";
import type { DeploySpec } from "../../agent/src/contract/spec";
import {
  AppNameSchema,
  CommandSchema,
  GpuRequirementSchema,
  ImageSchema,
  PortSchema,
  appSpecSchema,
  fieldErrors,
  repositoryProblem,
  type AppSpec,
  type GpuRequirement,
} from "../../agent/src/contract/validation";
import type { Db } from "../../db/client";
import { apps, gpuAssignments, hosts, marketplaceTemplates, type App, type AppStatus, type MarketplaceTemplate } from "../../db/schema";
import type { Actor, AppChange, ConsoleContext } from "../context.server";
import { neverObserved, queuedState, waitingState, writeAppState } from "./app-status.server";
import { recordAudit } from "./audit.server";
import { enqueueCommand } from "./commands.server";
import { ServiceError } from "./errors";
import { publishAll, recordEvent } from "./events.server";
import { assignGpus, pickHost, type HostCandidate } from "./placement.server";

const HostIdSchema = z.string().min(1, { error: "is required" }).max(64).regex(/^[A-Za-z0-9_-]+$/, { error: "is not a host id" });

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
});
export type AppCreateInput = z.infer<typeof AppCreateInput>;

export const AppUpdateInput = z.strictObject({
  name: AppNameSchema,
  startCommand: CommandSchema.optional(),
  port: PortSchema.optional(),
  image: ImageSchema.nullable().optional(),
  installCommand: CommandSchema.nullable().optional(),
  gpu: GpuRequirementSchema.optional(),
});
export type AppUpdateInput = z.infer<typeof AppUpdateInput>;

export const AppNameInput = z.strictObject({ name: AppNameSchema });

export const AppListInput = z
  .strictObject({
    status: z.enum(["RUNNING", "STARTING", "STOPPED"]).optional(),
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
  templateId: string | null;
  image: string | null;
  gpu: GpuRequirement | null;
  gpuDevices: string[];
  usage: Record<string, number> | null;
  /** When the status last changed: uptime while RUNNING. */
  statusSince: string | null;
  createdAt: string;
  updatedAt: string;
}

export function toAppDto(row: App, hostName: string | null = null, hostOnline = false): AppDto {
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
    templateId: row.templateId,
    image: row.image,
    gpu: row.gpu ?? null,
    gpuDevices: row.gpuDevices ?? [],
    usage: row.usage ?? null,
    statusSince: row.statusSince ?? null,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

/** Parses raw input against a schema, or throws BAD_REQUEST naming each bad field. */
export function parseInput<S extends z.ZodType>(schema: S, raw: unknown): z.infer<S> {
  const r = schema.safeParse(raw);
  if (!r.success) throw ServiceError.invalid(fieldErrors(r.error));
  return r.data;
}

const appColumns = { app: apps, hostName: hosts.name, hostOnline: sql<number>`coalesce(${hosts.online} = 1 AND ${hosts.revokedAt} IS NULL, 0)` };

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
  return rows.map((r) => toAppDto(r.app, r.hostName, Boolean(r.hostOnline)));
}

export async function findApp(db: Db, name: string): Promise<AppDto | null> {
  const [r] = await db.select(appColumns).from(apps).leftJoin(hosts, eq(apps.hostId, hosts.id)).where(eq(apps.name, name));
  return r ? toAppDto(r.app, r.hostName, Boolean(r.hostOnline)) : null;
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
  return {
    appId: row.id,
    name: row.name,
    repository: row.repository,
    startCommand: row.startCommand,
    installCommand: row.installCommand,
    port: row.port,
    image: row.image ?? tpl?.image ?? ctx.config.baseImage,
    gpuDevices: row.gpuDevices ?? [],
    capAdd: (tpl?.capAdd ?? []) as DeploySpec["capAdd"],
    keepPaths: tpl?.keepPaths ?? [],
  };
}

function templateGpu(t: MarketplaceTemplate): GpuRequirement {
  const gpu: GpuRequirement = { mode: t.gpuMode };
  if (t.gpuCount != null) gpu.count = t.gpuCount;
  if (t.gpuMinMemoryMiB != null) gpu.minMemoryMiB = t.gpuMinMemoryMiB;
  return gpu;
}

/** Template values fill what the operator left out; the result is checked as a whole. */
function resolveSpec(ctx: Pick<ConsoleContext, "config">, input: AppCreateInput, tpl: MarketplaceTemplate | null): AppSpec {
  const spec = {
    name: input.name,
    repository: input.repository ?? tpl?.repository,
    startCommand: input.startCommand ?? tpl?.startCommand,
    installCommand: input.installCommand ?? tpl?.installCommand ?? null,
    port: input.port ?? tpl?.defaultPort,
    image: input.image ?? tpl?.image ?? null,
    gpu: input.gpu ?? (tpl ? templateGpu(tpl) : undefined),
  };
  const schema = appSpecSchema(repositoryRules(ctx));
  const r = schema.safeParse(spec);
  if (!r.success) {
    const fields = fieldErrors(r.error);
    // A template that fails the rules is reported against the template, so its author can fix it.
    if (tpl) for (const k of Object.keys(fields)) if ((input as Record<string, unknown>)[k] === undefined) fields[k] += ` (from template ${tpl.slug})`;
    throw ServiceError.invalid(fields);
  }
  return r.data;
}

async function hostCandidates(db: Db): Promise<HostCandidate[]> {
  const rows = await db.select().from(hosts);
  const counts = await db.select({ hostId: apps.hostId, n: sql<number>`count(*)` }).from(apps).groupBy(apps.hostId);
  const held = await db.select().from(gpuAssignments);
  return rows.map((h) => ({
    id: h.id,
    online: h.online,
    revoked: h.revokedAt != null,
    facts: HostFactsSchema.catch({}).parse(h.facts),
    appCount: counts.find((c) => c.hostId === h.id)?.n ?? 0,
    heldGpus: held.filter((g) => g.hostId === h.id).map((g) => g.device),
  }));
}

type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];

/** Holds the app's GPUs in the unique (host, device) table: a GPU taken meanwhile fails the transaction. */
async function holdGpus(tx: Tx, appId: string, hostId: string | null, devices: string[]): Promise<void> {
  await tx.delete(gpuAssignments).where(eq(gpuAssignments.appId, appId));
  if (hostId && devices.length) await tx.insert(gpuAssignments).values(devices.map((device) => ({ hostId, device, appId })));
}

async function assertPortFree(db: Db, hostId: string | null, port: number, exceptName?: string): Promise<void> {
  const clash = await db
    .select({ name: apps.name })
    .from(apps)
    .where(and(hostId ? eq(apps.hostId, hostId) : isNull(apps.hostId), eq(apps.port, port), exceptName ? ne(apps.name, exceptName) : undefined))
    .limit(1);
  if (clash.length) {
    const where = hostId ? "on this host" : "waiting for a host";
    throw ServiceError.field("CONFLICT", "port", `is already used by app ${clash[0].name} ${where}`);
  }
}

function isUniqueViolation(e: unknown, index: string): boolean {
  const text = `${(e as Error)?.message ?? ""} ${String((e as { cause?: unknown })?.cause ?? "")}`;
  return text.includes("UNIQUE constraint failed") && text.includes(index);
}

function repositoryRules(ctx: Pick<ConsoleContext, "config">) {
  return { allowInsecure: ctx.config.allowInsecureGit, allowedHosts: ctx.config.allowedGitHosts };
}

/** Every field is checked before anything is written, and every bad field is named at once. */
function parseCreateInput(ctx: Pick<ConsoleContext, "config">, raw: unknown): AppCreateInput {
  const r = AppCreateInput.safeParse(raw);
  if (r.success) return r.data;
  const fields = fieldErrors(r.error);
  const repo = (raw as { repository?: unknown } | null)?.repository;
  if (typeof repo === "string" && !fields.repository) {
    const problem = repositoryProblem(repo, repositoryRules(ctx));
    if (problem) fields.repository = problem;
  }
  throw ServiceError.invalid(fields);
}

export async function createApp(ctx: ConsoleContext, actor: Actor, raw: unknown): Promise<AppDto> {
  const input = parseCreateInput(ctx, raw);
  const { db } = ctx;

  let tpl: MarketplaceTemplate | null = null;
  if (input.templateId !== undefined) {
    [tpl] = await db.select().from(marketplaceTemplates).where(eq(marketplaceTemplates.slug, input.templateId));
    if (!tpl) throw ServiceError.field("NOT_FOUND", "templateId", `does not name a marketplace template (${input.templateId})`);
  }
  const spec = resolveSpec(ctx, input, tpl);

  if ((await db.select({ id: apps.id }).from(apps).where(eq(apps.name, spec.name))).length) {
    throw ServiceError.field("CONFLICT", "name", "is already taken");
  }

  const candidates = await hostCandidates(db);
  let hostId: string | null = null;
  let gpuDevices: string[] = [];
  let waitingReason: string | null = null;
  if (input.hostId !== undefined) {
    const host = candidates.find((h) => h.id === input.hostId && !h.revoked);
    if (!host) throw ServiceError.field("NOT_FOUND", "hostId", `does not name a known host (${input.hostId})`);
    const a = assignGpus(host.facts, host.heldGpus, spec.gpu);
    if ("reason" in a) throw ServiceError.field("BAD_REQUEST", "hostId", `cannot run this app: ${a.reason}`);
    hostId = host.id;
    gpuDevices = a.devices;
  } else {
    const p = pickHost(candidates, spec.gpu);
    if ("reason" in p) waitingReason = p.reason;
    else ({ hostId, gpuDevices } = p);
  }
  await assertPortFree(db, hostId, spec.port);

  const id = randomUUID();
  const now = new Date().toISOString();
  const changes: AppChange[] = [];
  const initial = hostId ? queuedState("provision", candidates.find((h) => h.id === hostId)?.online ?? false) : waitingState(waitingReason ?? "waiting for a host");
  try {
    await db.transaction(async (tx) => {
      const [row] = await tx.insert(apps).values({
        id,
        name: spec.name,
        repository: spec.repository,
        startCommand: spec.startCommand,
        installCommand: spec.installCommand ?? null,
        port: spec.port,
        image: spec.image ?? null,
        gpu: spec.gpu ?? null,
        gpuDevices,
        templateId: tpl?.slug ?? null,
        hostId,
        status: initial.status ?? "STOPPED",
        phase: initial.phase ?? null,
        observed: neverObserved(now),
        createdAt: now,
        updatedAt: now,
      }).returning();
      await holdGpus(tx, id, hostId, gpuDevices);
      if (hostId) {
        const params = { spec: await buildDeploySpec(ctx, row) };
        await enqueueCommand(tx, actor, { hostId, appId: id, appName: spec.name, action: "provision", params }, ctx.metrics);
      }
      changes.push(
        await recordEvent(tx, {
          appId: id,
          appName: spec.name,
          type: "created",
          data: { status: initial.status, phase: initial.phase, hostId },
        }),
      );
      await recordAudit(tx, actor, { action: "app.create", target: spec.name, detail: { hostId, templateId: tpl?.slug ?? null } });
    });
  } catch (e) {
    if (isUniqueViolation(e, "apps.name")) throw ServiceError.field("CONFLICT", "name", "is already taken");
    if (isUniqueViolation(e, "apps.host_id")) throw ServiceError.field("CONFLICT", "port", "is already used on this host");
    if (isUniqueViolation(e, "gpu_assignments")) throw ServiceError.field("CONFLICT", "gpu", "the GPU chosen for this app was just given to another app; try again");
    throw e;
  }
  publishAll(ctx, changes);
  if (hostId) ctx.dispatcher.kick(hostId);
  return requireApp(db, spec.name);
}

export async function updateApp(ctx: ConsoleContext, actor: Actor, raw: unknown): Promise<AppDto> {
  const input = parseInput(AppUpdateInput, raw);
  const { db } = ctx;
  const [row] = await db.select().from(apps).where(eq(apps.name, input.name));
  if (!row) throw ServiceError.field("NOT_FOUND", "name", `does not name an existing app (${input.name})`);

  const next = {
    startCommand: input.startCommand ?? row.startCommand,
    port: input.port ?? row.port,
    image: input.image === undefined ? row.image : input.image,
    installCommand: input.installCommand === undefined ? row.installCommand : input.installCommand,
    gpu: input.gpu ?? row.gpu ?? undefined,
  };
  const changed = Object.fromEntries(
    Object.entries(next).filter(([k, v]) => JSON.stringify(v ?? null) !== JSON.stringify((row as Record<string, unknown>)[k] ?? null)),
  );
  if (Object.keys(changed).length === 0) return requireApp(db, row.name);
  if (changed.port !== undefined) await assertPortFree(db, row.hostId, next.port, row.name);

  let gpuDevices = row.gpuDevices ?? [];
  if (changed.gpu !== undefined && row.hostId) {
    const host = (await hostCandidates(db)).find((h) => h.id === row.hostId);
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
        .set({ ...next, gpu: next.gpu ?? null, gpuDevices, updatedAt: new Date().toISOString() })
        .where(eq(apps.id, row.id))
        .returning();
      if (changed.gpu !== undefined) await holdGpus(tx, row.id, row.hostId, gpuDevices);
      if (row.hostId) {
        const params = { spec: await buildDeploySpec(ctx, updated) };
        await enqueueCommand(tx, actor, { hostId: row.hostId, appId: row.id, appName: row.name, action: "update", params }, ctx.metrics);
        const change = await writeAppState(tx, updated, queuedState("update", host?.online ?? false, row.status), { type: "action", data: { action: "update" } });
        if (change) changes.push(change);
      }
      changes.push(await recordEvent(tx, { appId: row.id, appName: row.name, type: "updated", data: { changed: Object.keys(changed) } }));
      await recordAudit(tx, actor, { action: "app.update", target: row.name, detail: { changed: Object.keys(changed) } });
    });
  } catch (e) {
    if (isUniqueViolation(e, "apps.host_id")) throw ServiceError.field("CONFLICT", "port", "is already used on this host");
    if (isUniqueViolation(e, "gpu_assignments")) throw ServiceError.field("CONFLICT", "gpu", "the GPU chosen for this app was just given to another app; try again");
    throw e;
  }
  publishAll(ctx, changes);
  if (row.hostId) ctx.dispatcher.kick(row.hostId);
  return requireApp(db, row.name);
}

const PLACEMENT_ACTOR: Actor = { kind: "system", id: "console", role: "admin" };

/**
 * Places apps that wait for a host (hostId NULL) now that a host has connected, and queues their
 * provision command. Safe when several console processes do it at once: an app is only claimed
 * while it still has no host. Returns the hosts that got work, for the caller to kick.
 */
export async function placeWaitingApps(ctx: Pick<ConsoleContext, "db" | "config" | "bus">): Promise<string[]> {
  const { db } = ctx;
  const waiting = await db.select().from(apps).where(isNull(apps.hostId)).orderBy(asc(apps.createdAt));
  if (!waiting.length) return [];
  const kicked = new Set<string>();
  for (const row of waiting) {
    const p = pickHost(await hostCandidates(db), row.gpu ?? undefined);
    if (p.hostId === null) {
      const changes: AppChange[] = [];
      await db.transaction(async (tx) => {
        const change = await writeAppState(tx, row, waitingState(p.reason), { type: "status" });
        if (change) changes.push(change);
      });
      publishAll(ctx, changes);
      continue;
    }
    const { hostId, gpuDevices } = p;
    const changes: AppChange[] = [];
    try {
      await db.transaction(async (tx) => {
        const [placed] = await tx
          .update(apps)
          .set({ hostId, gpuDevices, updatedAt: new Date().toISOString() })
          .where(and(eq(apps.id, row.id), isNull(apps.hostId)))
          .returning();
        if (!placed) return;
        await holdGpus(tx, row.id, hostId, gpuDevices);
        const placedChange = await writeAppState(tx, placed, queuedState("provision", true), { type: "placed", data: { hostId } });
        if (placedChange) changes.push(placedChange);
        const params = { spec: await buildDeploySpec(ctx, placed) };
        const commandId = await enqueueCommand(tx, PLACEMENT_ACTOR, { hostId, appId: row.id, appName: row.name, action: "provision", params });
        await recordAudit(tx, PLACEMENT_ACTOR, { action: "app.place", target: row.name, detail: { hostId, commandId } });
        kicked.add(hostId);
      });
    } catch (e) {
      // Another app holds this port (or GPU) on the chosen host: this one keeps waiting.
      if (isUniqueViolation(e, "apps.host_id") || isUniqueViolation(e, "gpu_assignments")) continue;
      throw e;
    }
    publishAll(ctx, changes);
  }
  return [...kicked];
}
