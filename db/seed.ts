// Marketplace seed: every templates/marketplace/*.json is checked against TemplateFileSchema and
// upserted by slug. Idempotent; a bad file stops start-up with its name and the failing field.
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { z } from "zod";
import {
  AppNameSchema,
  CapabilitySchema,
  CommandSchema,
  GpuRequirementSchema,
  ImageSchema,
  KeepPathSchema,
  PortSchema,
  fieldErrors,
  repositorySchema,
} from "../agent/src/contract/validation";
import { ModelStoreUseSchema } from "../agent/src/contract/models";
import type { Db } from "./client";
import { DeclaredSecretsSchema, EnvSchema } from "../agent/src/contract/app-config";
import { marketplaceTemplates } from "./schema";

export const TemplateFileSchema = z.strictObject({
  slug: AppNameSchema,
  name: z.string().min(1).max(80),
  summary: z.string().min(1).max(400),
  homepage: z.url({ protocol: /^https$/ }).optional(),
  // Seeded templates always point at public https forges, whatever the insecure-git switch says.
  repository: repositorySchema({ allowInsecure: false }),
  startCommand: CommandSchema,
  installCommand: CommandSchema.optional(),
  defaultPort: PortSchema,
  gpu: GpuRequirementSchema.default({ mode: "none" }),
  image: ImageSchema.optional(),
  keepPaths: z.array(KeepPathSchema).max(32).default([]),
  capAdd: z.array(CapabilitySchema).max(8).default([]),
  /** Apps from this template fetch the repository's git submodules (checked, one level). */
  gitSubmodules: z.boolean().default(false),
  // App configuration a template declares: env defaults and the secrets it asks for (names only).
  env: EnvSchema.default({}),
  secrets: DeclaredSecretsSchema.default([]),
  /** How the app finds the host's shared model store (flags appended to its start command, a config file the agent writes); absent: the template does not use it. */
  modelStore: ModelStoreUseSchema.optional(),
});
export type TemplateFile = z.infer<typeof TemplateFileSchema>;

export class TemplateFileError extends Error {
  constructor(
    readonly file: string,
    readonly fields: Record<string, string>,
  ) {
    const detail = Object.entries(fields).map(([k, v]) => `${k} ${v}`).join("; ");
    super(`Template ${file} is invalid: ${detail}`);
  }
}

export async function loadTemplateFiles(dir: string): Promise<TemplateFile[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith(".json")).sort();
  const out: TemplateFile[] = [];
  const slugs = new Map<string, string>();
  for (const name of names) {
    const file = join(dir, name);
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(file, "utf8"));
    } catch (e) {
      throw new TemplateFileError(file, { json: `is not valid JSON (${(e as Error).message})` });
    }
    const parsed = TemplateFileSchema.safeParse(raw);
    if (!parsed.success) throw new TemplateFileError(file, fieldErrors(parsed.error));
    const other = slugs.get(parsed.data.slug);
    if (other) throw new TemplateFileError(file, { slug: `duplicates the slug of ${other}` });
    slugs.set(parsed.data.slug, file);
    out.push(parsed.data);
  }
  return out;
}

export async function seedMarketplace(db: Db, dir: string): Promise<number> {
  const files = await loadTemplateFiles(dir);
  if (files.length === 0) return 0;
  const rows = files.map((t, i) => ({
    slug: t.slug,
    name: t.name,
    summary: t.summary,
    homepage: t.homepage ?? null,
    repository: t.repository,
    startCommand: t.startCommand,
    installCommand: t.installCommand ?? null,
    defaultPort: t.defaultPort,
    gpuMode: t.gpu.mode,
    gpuCount: t.gpu.count ?? null,
    gpuMinMemoryMiB: t.gpu.minMemoryMiB ?? null,
    image: t.image ?? null,
    keepPaths: t.keepPaths,
    capAdd: t.capAdd,
    gitSubmodules: t.gitSubmodules,
    env: t.env,
    secrets: t.secrets,
    modelStore: t.modelStore ?? null,
    source: "seed" as const,
    position: i,
  }));
  const excluded = (col: string) => sql.raw(`excluded.${col}`);
  await db
    .insert(marketplaceTemplates)
    .values(rows)
    .onConflictDoUpdate({
      target: marketplaceTemplates.slug,
      // A promoted template that took a seed's slug is the operator's: leave it alone.
      setWhere: sql`${marketplaceTemplates.source} = 'seed'`,
      set: {
        name: excluded("name"),
        summary: excluded("summary"),
        homepage: excluded("homepage"),
        repository: excluded("repository"),
        startCommand: excluded("start_command"),
        installCommand: excluded("install_command"),
        defaultPort: excluded("default_port"),
        gpuMode: excluded("gpu_mode"),
        gpuCount: excluded("gpu_count"),
        gpuMinMemoryMiB: excluded("gpu_min_memory_mib"),
        image: excluded("image"),
        env: excluded("env"),
        secrets: excluded("secrets"),
        modelStore: excluded("model_store"),
        keepPaths: excluded("keep_paths"),
        capAdd: excluded("cap_add"),
        gitSubmodules: excluded("git_submodules"),
        position: excluded("position"),
        updatedAt: sql`(strftime('%Y-%m-%dT%H:%M:%fZ','now'))`,
      },
    });
  return rows.length;
}
