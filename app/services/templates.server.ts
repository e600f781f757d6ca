import { asc, eq } from "drizzle-orm";
import { z } from "zod";
import { AppNameSchema, type GpuRequirement } from "../../agent/src/contract/validation";
import { apps, marketplaceTemplates, type MarketplaceTemplate } from "../../db/schema";
import type { Actor, ConsoleContext } from "../context.server";
import { recordAudit } from "./audit.server";
import { requireAppRow } from "./app-writes.server";
import { ServiceError } from "./errors";

export const TemplateSlugInput = z.strictObject({ slug: AppNameSchema });

export interface TemplateDto {
  slug: string;
  name: string;
  summary: string;
  homepage: string | null;
  repository: string;
  startCommand: string;
  installCommand: string | null;
  defaultPort: number;
  gpu: GpuRequirement;
  image: string | null;
  keepPaths: string[];
  capAdd: string[];
  /** Apps from this template fetch the repository's submodules. */
  gitSubmodules: boolean;
  source: "seed" | "promoted";
  originAppId: string | null;
  /** Name of the app a promoted template came from, while that app exists. */
  originApp: string | null;
  /** Environment defaults and the secrets the template asks for (names and descriptions, never values). */
  env: Record<string, string>;
  secrets: { name: string; description: string; required: boolean }[];
}

export function toTemplateDto(t: MarketplaceTemplate, originApp: string | null = null): TemplateDto {
  const gpu: GpuRequirement = { mode: t.gpuMode };
  if (t.gpuCount != null) gpu.count = t.gpuCount;
  if (t.gpuMinMemoryMiB != null) gpu.minMemoryMiB = t.gpuMinMemoryMiB;
  return {
    slug: t.slug,
    name: t.name,
    summary: t.summary,
    homepage: t.homepage,
    repository: t.repository,
    startCommand: t.startCommand,
    installCommand: t.installCommand,
    defaultPort: t.defaultPort,
    gpu,
    image: t.image,
    keepPaths: t.keepPaths,
    capAdd: t.capAdd,
    gitSubmodules: Boolean(t.gitSubmodules),
    source: t.source,
    originAppId: t.originAppId,
    originApp,
    env: t.env ?? {},
    secrets: t.secrets ?? [],
  };
}

export async function listTemplates(ctx: Pick<ConsoleContext, "db">): Promise<TemplateDto[]> {
  const rows = await ctx.db
    .select({ t: marketplaceTemplates, origin: apps.name })
    .from(marketplaceTemplates)
    .leftJoin(apps, eq(apps.id, marketplaceTemplates.originAppId))
    .orderBy(asc(marketplaceTemplates.position), asc(marketplaceTemplates.name));
  return rows.map((r) => toTemplateDto(r.t, r.origin));
}

export async function getTemplate(ctx: Pick<ConsoleContext, "db">, slug: string): Promise<TemplateDto> {
  const [row] = await ctx.db
    .select({ t: marketplaceTemplates, origin: apps.name })
    .from(marketplaceTemplates)
    .leftJoin(apps, eq(apps.id, marketplaceTemplates.originAppId))
    .where(eq(marketplaceTemplates.slug, slug));
  if (!row) throw ServiceError.field("NOT_FOUND", "slug", `does not name a marketplace template (${slug})`);
  return toTemplateDto(row.t, row.origin);
}

export const PromoteInput = z.strictObject({
  name: AppNameSchema,
  slug: AppNameSchema.optional(),
  title: z.string().min(1).max(80).refine((s) => !/[\u0000-\u001F\u007F]/.test(s), { error: "must not contain control characters" }).optional(),
  summary: z.string().min(1).max(400).refine((s) => !/[\u0000-\u0008\u000B-\u001F\u007F]/.test(s), { error: "must not contain control characters" }).optional(),
});

/** A finished install becomes a marketplace template that links back to its origin app. */
export async function promoteApp(ctx: ConsoleContext, actor: Actor, input: z.infer<typeof PromoteInput>): Promise<TemplateDto> {
  const app = await requireAppRow(ctx.db, input.name);
  if (!app.commitSha) throw new ServiceError("PRECONDITION_FAILED", `${app.name} has not finished installing yet`, { name: "has not finished installing yet" });
  const slug = input.slug ?? app.name;
  if ((await ctx.db.select({ slug: marketplaceTemplates.slug }).from(marketplaceTemplates).where(eq(marketplaceTemplates.slug, slug))).length) {
    throw ServiceError.field("CONFLICT", input.slug ? "slug" : "name", `is already a marketplace template (${slug}); choose another slug`);
  }
  const [base] = app.templateId ? await ctx.db.select().from(marketplaceTemplates).where(eq(marketplaceTemplates.slug, app.templateId)) : [];
  await ctx.db.transaction(async (tx) => {
    await tx.insert(marketplaceTemplates).values({
      slug,
      name: input.title ?? app.name,
      summary: input.summary ?? base?.summary ?? `Promoted from ${app.name} at ${app.commitSha!.slice(0, 8)}.`,
      homepage: base?.homepage ?? null,
      repository: app.repository,
      startCommand: app.startCommand,
      installCommand: app.installCommand,
      defaultPort: app.port,
      gpuMode: app.gpu?.mode ?? "none",
      gpuCount: app.gpu?.count ?? null,
      gpuMinMemoryMiB: app.gpu?.minMemoryMiB ?? null,
      image: app.image ?? base?.image ?? null,
      keepPaths: base?.keepPaths ?? [],
      capAdd: base?.capAdd ?? [],
      gitSubmodules: app.gitSubmodules,
      // The app's env becomes the defaults; its secrets travel as declared names only, never values.
      env: app.env ?? {},
      secrets: mergeDeclared(base?.secrets ?? [], app.secretNames ?? []),
      originAppId: app.id,
      source: "promoted",
    });
    await recordAudit(tx, actor, { action: "template.promote", target: slug, detail: { app: app.name, commitSha: app.commitSha } });
  });
  return getTemplate(ctx, slug);
}

/** The base template's declared secrets, plus the app's other secret names as optional ones. */
function mergeDeclared(declared: TemplateDto["secrets"], names: string[]): TemplateDto["secrets"] {
  const out = [...declared];
  for (const name of names) if (!out.some((d) => d.name === name)) out.push({ name, description: `secret ${name} (set per app)`, required: false });
  return out;
}
