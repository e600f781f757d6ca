// Registering apps: apps.create (validate, resolve the template, place, outbox, event, audit) and
// the placement of apps that waited for a host. Each registration is one transaction; those that
// arrive together share one database commit (group-commit.server.ts).
import { randomUUID } from "node:crypto";
import { and, asc, eq, isNull } from "drizzle-orm";
import { z } from "zod";
import { AppNameSchema, PortSchema, appSpecSchema, fieldErrors, repositoryProblem, type AppSpec, type GpuRequirement } from "../../agent/src/contract/validation";
import { placeholders, prepared } from "../../db/prepared";
import { apps, marketplaceTemplates, type MarketplaceTemplate } from "../../db/schema";
import type { Actor, AppChange, ConsoleContext } from "../context.server";
import { neverObserved, queuedState, waitingState, writeAppState } from "./app-status.server";
import { assertPortFree, conflictOf, holdGpus, hostCandidates, isUniqueViolation, usedPorts } from "./app-writes.server";
import { AppCreateInput, buildDeploySpec, deploySpecOf, toAppDto, type AppDto } from "./apps.server";
import { recordAudit } from "./audit.server";
import { enqueueCommand } from "./commands.server";
import { ServiceError } from "./errors";
import { publishAll, recordEvent } from "./events.server";
import { inGroupTransaction, type Tx } from "./group-commit.server";
import { checkConfig, planSecretWrites, writeSecretRows } from "./app-config.server";
import { secretSummary } from "./apps.server";
import { assignGpus, nextFreePort, pickHost } from "./placement.server";

function templateGpu(t: MarketplaceTemplate): GpuRequirement {
  const gpu: GpuRequirement = { mode: t.gpuMode };
  if (t.gpuCount != null) gpu.count = t.gpuCount;
  if (t.gpuMinMemoryMiB != null) gpu.minMemoryMiB = t.gpuMinMemoryMiB;
  return gpu;
}

type NewApp = typeof apps.$inferInsert;

/** The columns a registration writes (the others take their defaults): one prepared insert. */
const NEW_APP_COLUMNS = [
  "id", "name", "repository", "startCommand", "installCommand", "port", "image", "gpu", "gpuDevices", "publicPort",
  "idleStopMinutes", "templateId", "gitRef", "gitSubmodules", "env", "secretNames", "secretsVersion", "gitCredentialSealed",
  "resources", "healthPath", "sharedModels", "startupStallSeconds", "hostId", "status", "phase", "observed", "statusSince",
  "createdAt", "updatedAt",
] as const satisfies readonly (keyof NewApp)[];
type NewAppRow = Required<Pick<NewApp, (typeof NEW_APP_COLUMNS)[number]>>;
const insertApp = prepared((db: Tx) => db.insert(apps).values(placeholders(NEW_APP_COLUMNS)).returning());

type Rules = { allowInsecure: boolean; allowedHosts: string[] };
const repositoryRules = (ctx: Pick<ConsoleContext, "config">): Rules => ({ allowInsecure: ctx.config.allowInsecureGit, allowedHosts: ctx.config.allowedGitHosts });

/** The spec schema depends on configuration only: built once per configuration, not per request. */
const specSchemas = new WeakMap<object, ReturnType<typeof appSpecSchema>>();
function specSchema(ctx: Pick<ConsoleContext, "config">) {
  let s = specSchemas.get(ctx.config);
  if (!s) specSchemas.set(ctx.config, (s = appSpecSchema(repositoryRules(ctx))));
  return s;
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
  const r = specSchema(ctx).safeParse(spec);
  if (!r.success) {
    const fields = fieldErrors(r.error);
    // A template that fails the rules is reported against the template, so its author can fix it.
    if (tpl) for (const k of Object.keys(fields)) if ((input as Record<string, unknown>)[k] === undefined) fields[k] += ` (from template ${tpl.slug})`;
    throw ServiceError.invalid(fields);
  }
  return r.data;
}

/** Every field is checked before anything is written, and every bad field is named at once. */
export function parseCreateInput(ctx: Pick<ConsoleContext, "config">, raw: unknown): AppCreateInput {
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

export interface Registration {
  app: AppDto;
  /** The provision command queued, or null while the app waits for a host. */
  commandId: string | null;
}

export async function createApp(ctx: ConsoleContext, actor: Actor, raw: unknown): Promise<AppDto> {
  return (await registerApp(ctx, actor, raw)).app;
}

export async function registerApp(ctx: ConsoleContext, actor: Actor, raw: unknown): Promise<Registration> {
  const input = parseCreateInput(ctx, raw);
  let tpl: MarketplaceTemplate | null = null;
  if (input.templateId !== undefined) {
    [tpl = null] = await ctx.db.select().from(marketplaceTemplates).where(eq(marketplaceTemplates.slug, input.templateId));
    if (!tpl) throw ServiceError.field("NOT_FOUND", "templateId", `does not name a marketplace template (${input.templateId})`);
  }
  const spec = resolveSpec(ctx, input, tpl);
  // Template env defaults under the operator's own; a template's required secrets must be given.
  const env = { ...(tpl?.env ?? {}), ...(input.env ?? {}) };
  checkConfig(input, { env, existingSecrets: [], declared: tpl?.secrets ?? [], template: tpl?.slug });
  const templatePort = input.port === undefined && tpl !== null;
  const id = randomUUID();
  const secretPlan = planSecretWrites(ctx, id, { secretNames: [], secretsVersion: null, gitCredentialSealed: null }, input);
  let done;
  try {
    // The checks run inside the transaction: registrations grouped into one commit see each other.
    // A taken name is found by the port check's query (and by the unique index, should two race).
    done = await inGroupTransaction(ctx.db, async (tx) => {
      const candidates = await hostCandidates(tx, input.hostId, templatePort ? undefined : spec.port);
      let hostId: string | null = null;
      let gpuDevices: string[] = [];
      let waitingReason: string | null = null;
      if (input.hostId !== undefined) {
        const host = candidates.find((h) => !h.revoked);
        if (!host) throw ServiceError.field("NOT_FOUND", "hostId", `does not name a known host (${input.hostId})`);
        const a = assignGpus(host.facts, host.heldGpus, spec.gpu);
        if ("reason" in a) throw ServiceError.field("BAD_REQUEST", "hostId", `cannot run this app: ${a.reason}`);
        hostId = host.id;
        gpuDevices = a.devices;
      } else {
        // A port the operator typed must be free where the app goes; a template's default may move.
        const p = pickHost(candidates, spec.gpu, templatePort ? undefined : spec.port);
        if ("reason" in p) waitingReason = p.reason;
        else ({ hostId, gpuDevices } = p);
      }
      if (templatePort) {
        // The template's default port taken on the chosen host (four templates share 7860) → the next free one.
        const port = nextFreePort(await usedPorts(tx, hostId), spec.port);
        if (port === null) throw ServiceError.field("CONFLICT", "port", `no free port from ${spec.port} up on this host`);
        spec.port = port;
      }
      await assertPortFree(tx, hostId, spec.port, { claim: spec.name });
      const host = candidates.find((h) => h.id === hostId);
      const initial = hostId ? queuedState("provision", host?.online ?? false) : waitingState(waitingReason ?? "waiting for a host");
      const now = new Date().toISOString();
      const [row] = await insertApp(tx).all({
        id,
        name: spec.name,
        repository: spec.repository,
        startCommand: spec.startCommand,
        installCommand: spec.installCommand ?? null,
        port: spec.port,
        image: spec.image ?? null,
        gpu: spec.gpu ?? null,
        gpuDevices,
        publicPort: input.publicPort ?? false,
        idleStopMinutes: input.idleStopMinutes ?? null,
        templateId: tpl?.slug ?? null,
        gitRef: input.gitRef ?? null,
        gitSubmodules: input.gitSubmodules ?? tpl?.gitSubmodules ?? false,
        env,
        ...secretPlan.columns,
        resources: input.resources ?? {},
        healthPath: input.healthPath ?? "/",
        // Templates use the shared model store unless the operator says otherwise.
        sharedModels: input.sharedModels ?? tpl !== null,
        startupStallSeconds: input.startupStallSeconds ?? null,
        hostId,
        status: initial.status ?? "STOPPED",
        phase: initial.phase ?? null,
        observed: neverObserved(now),
        // Given here, the row comes back complete and the insert trigger has nothing to update.
        statusSince: now,
        createdAt: now,
        updatedAt: now,
      } satisfies NewAppRow);
      await writeSecretRows(tx, id, secretPlan);
      if (hostId && gpuDevices.length) await holdGpus(tx, id, hostId, gpuDevices);
      const commandId = hostId
        ? await enqueueCommand(tx, actor, { hostId, appId: id, appName: spec.name, action: "provision", params: { spec: deploySpecOf(ctx.config, row, tpl) } }, ctx.metrics)
        : null;
      const change = await recordEvent(tx, { appId: id, appName: spec.name, type: "created", data: { status: initial.status, phase: initial.phase, hostId } });
      await recordAudit(tx, actor, { action: "app.create", target: spec.name, detail: { hostId, templateId: tpl?.slug ?? null, ...secretSummary(secretPlan.summary) } });
      return { row, change, commandId, hostName: host?.name ?? null, hostOnline: Boolean(host?.online && !host.revoked), hostFacts: host?.facts ?? null };
    });
  } catch (e) {
    throw conflictOf(e) ?? e;
  }
  publishAll(ctx, [done.change]);
  if (done.row.hostId) ctx.dispatcher.kick(done.row.hostId);
  return { app: toAppDto(done.row, done.hostName, done.hostOnline, done.hostFacts), commandId: done.commandId };
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
    const p = pickHost(await hostCandidates(db, undefined, row.port), row.gpu ?? undefined, row.port);
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

// ---- port preview for the Add App dialog
export const SuggestPortInput = z.strictObject({
  templateId: AppNameSchema.optional(),
  port: PortSchema.optional(),
  hostId: z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/, { error: "is not a host id" }).optional(),
});

/**
 * The port an app would get if it were created now: a template's default moves to the next free
 * port on the host it would be placed on (`moved`); a typed port is only checked (`taken`).
 */
export async function suggestPort(ctx: Pick<ConsoleContext, "db">, input: z.infer<typeof SuggestPortInput>): Promise<{ port: number; hostId: string | null; moved: boolean; taken: boolean }> {
  let tpl: MarketplaceTemplate | null = null;
  if (input.templateId !== undefined) {
    [tpl = null] = await ctx.db.select().from(marketplaceTemplates).where(eq(marketplaceTemplates.slug, input.templateId));
    if (!tpl) throw ServiceError.field("NOT_FOUND", "templateId", `does not name a marketplace template (${input.templateId})`);
  }
  const wanted = input.port ?? tpl?.defaultPort;
  if (wanted === undefined) throw ServiceError.field("BAD_REQUEST", "port", "is required without a template");
  const candidates = await hostCandidates(ctx.db, input.hostId, input.port);
  const p = input.hostId !== undefined ? { hostId: candidates[0]?.id ?? null } : pickHost(candidates, tpl ? templateGpu(tpl) : undefined, input.port);
  const used = await usedPorts(ctx.db, p.hostId);
  if (input.port !== undefined) return { port: input.port, hostId: p.hostId, moved: false, taken: used.includes(input.port) };
  const port = nextFreePort(used, wanted) ?? wanted;
  return { port, hostId: p.hostId, moved: port !== wanted, taken: false };
}
// ---- end port preview
