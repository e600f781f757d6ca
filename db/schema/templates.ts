import { sql } from "drizzle-orm";
import { check, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { GPU_MODES } from "../../agent/src/contract/enums";
import type { ModelStoreUse } from "../../agent/src/contract/models";
import { apps } from "./apps";
import { oneOf } from "./check";

export { GPU_MODES };

/** Marketplace entry: seeded from templates/marketplace, or promoted from an installed app. */
export const marketplaceTemplates = sqliteTable(
  "marketplace_templates",
  {
    slug: text("slug").primaryKey(),
    name: text("name").notNull(),
    summary: text("summary").notNull(),
    repository: text("repository").notNull(),
    startCommand: text("start_command").notNull(),
    installCommand: text("install_command"),
    defaultPort: integer("default_port").notNull(),
    gpuMode: text("gpu_mode", { enum: GPU_MODES }).notNull().default("none"),
    gpuCount: integer("gpu_count"),
    gpuMinMemoryMiB: integer("gpu_min_memory_mib"),
    image: text("image"),
    keepPaths: text("keep_paths", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
    capAdd: text("cap_add", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
    /** Apps from this template fetch the repository's submodules (git refs block). */
    gitSubmodules: integer("git_submodules", { mode: "boolean" }).notNull().default(false),
    homepage: text("homepage"),
    // ---- app configuration a template declares: env defaults and the secrets it asks for (names only)
    env: text("env", { mode: "json" }).$type<Record<string, string>>().notNull().default(sql`'{}'`),
    secrets: text("secrets", { mode: "json" }).$type<{ name: string; description: string; required: boolean }[]>().notNull().default(sql`'[]'`),
    // ---- end app configuration
    /** How the template's app finds the shared model store (flags appended, config file); null: it does not use it. */
    modelStore: text("model_store", { mode: "json" }).$type<ModelStoreUse>(),
    /** The app this template was promoted from; cleared (not the template) when that app goes. */
    originAppId: text("origin_app_id").references(() => apps.id, { onDelete: "set null" }),
    source: text("source", { enum: ["seed", "promoted"] }).notNull().default("seed"),
    position: integer("position").notNull().default(1000),
    createdAt: text("created_at").notNull().default(sql`(strftime('%Y-%m-%dT%H:%M:%fZ','now'))`),
    updatedAt: text("updated_at").notNull().default(sql`(strftime('%Y-%m-%dT%H:%M:%fZ','now'))`),
  },
  (t) => [
    check("templates_gpu_mode_enum", oneOf(t.gpuMode, GPU_MODES)),
    check("templates_source_enum", sql`${t.source} IN ('seed', 'promoted')`),
  ],
);

export type MarketplaceTemplate = typeof marketplaceTemplates.$inferSelect;
