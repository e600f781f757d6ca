import { asc, eq } from "drizzle-orm";
import { z } from "zod";
import { AppNameSchema, type GpuRequirement } from "../../agent/src/contract/validation";
import { marketplaceTemplates, type MarketplaceTemplate } from "../../db/schema";
import type { ConsoleContext } from "../context.server";
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
  source: "seed" | "promoted";
  originAppId: string | null;
}

export function toTemplateDto(t: MarketplaceTemplate): TemplateDto {
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
    source: t.source,
    originAppId: t.originAppId,
  };
}

export async function listTemplates(ctx: Pick<ConsoleContext, "db">): Promise<TemplateDto[]> {
  const rows = await ctx.db.select().from(marketplaceTemplates).orderBy(asc(marketplaceTemplates.position), asc(marketplaceTemplates.name));
  return rows.map(toTemplateDto);
}

export async function getTemplate(ctx: Pick<ConsoleContext, "db">, slug: string): Promise<TemplateDto> {
  const [row] = await ctx.db.select().from(marketplaceTemplates).where(eq(marketplaceTemplates.slug, slug));
  if (!row) throw ServiceError.field("NOT_FOUND", "slug", `does not name a marketplace template (${slug})`);
  return toTemplateDto(row);
}
