import { sql } from "drizzle-orm";
import { check, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { hosts } from "./hosts";

import { APP_HEALTH, APP_STATUSES, type AppHealth, type AppStatus, type GpuMode } from "../../agent/src/contract/enums";
import { oneOf } from "./check";

export { APP_HEALTH, APP_STATUSES, type AppHealth, type AppStatus } from "../../agent/src/contract/enums";

export const apps = sqliteTable(
  "apps",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull().unique(),
    repository: text("repository").notNull(),
    startCommand: text("start_command").notNull(),
    installCommand: text("install_command"),
    port: integer("port").notNull(),
    image: text("image"),
    gpu: text("gpu", { mode: "json" }).$type<{ mode: GpuMode; count?: number; minMemoryMiB?: number; devices?: string[] }>(),
    /** GPU device ids assigned on the host (whole GPUs are never shared between apps). */
    gpuDevices: text("gpu_devices", { mode: "json" }).$type<string[]>(),
    templateId: text("template_id"),
    hostId: text("host_id").references(() => hosts.id, { onDelete: "set null" }),
    status: text("status", { enum: APP_STATUSES }).notNull().default("STOPPED"),
    health: text("health", { enum: APP_HEALTH }).notNull().default("unknown"),
    lastProbeAt: text("last_probe_at"),
    phase: text("phase"),
    lastError: text("last_error"),
    commitSha: text("commit_sha"),
    // -- git refs, history and rollback --------------------------------------------------------
    /** Branch, tag or full commit SHA to deploy; null: the repository's default branch. */
    gitRef: text("git_ref"),
    /** Fetch the repository's submodules (checked, one level). */
    gitSubmodules: integer("git_submodules", { mode: "boolean" }).notNull().default(false),
    // -- end git refs --------------------------------------------------------------------------
    usage: text("usage", { mode: "json" }).$type<Record<string, number>>(),
    /**
     * The agent's last observation of the app (status, health, phase, lastError, at). The console
     * restores it when a command ends without the agent having run it (expired, refused, cancelled).
     */
    observed: text("observed", { mode: "json" }).$type<ObservedState>(),
    // ---- shared model store, startup watching
    /** Mount the host's shared model store at /models (templates default on). */
    sharedModels: integer("shared_models", { mode: "boolean" }).notNull().default(false),
    /** No output and no answer on the port for this long while STARTING → phase `stalled`; null: 600 s. */
    startupStallSeconds: integer("startup_stall_seconds"),
    /** While STARTING: the download the app's output shows (the agent's report); null otherwise. */
    progress: text("progress", { mode: "json" }).$type<StartupProgress>(),
    // ---- end
    /** When `status` last changed (kept by a trigger, whoever writes the status); uptime derives from it. */
    statusSince: text("status_since"),
    // ---- app configuration (environment, secrets, git credential, limits, probe path)
    /** Plain environment variables NAME → value (not secret: shown by apps.get). */
    env: text("env", { mode: "json" }).$type<Record<string, string>>().notNull().default(sql`'{}'`),
    /** Names of the app's secrets (values sealed in app_secrets). */
    secretNames: text("secret_names", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
    /** Opaque id changed whenever a secret or the git credential changes (so an update recreates). */
    secretsVersion: text("secrets_version"),
    /** `{ username?, token }` sealed with the console's secret key (purpose `git-credential:<app id>`). */
    gitCredentialSealed: text("git_credential_sealed"),
    resources: text("resources", { mode: "json" }).$type<{ memoryMiB?: number; cpus?: number }>().notNull().default(sql`'{}'`),
    healthPath: text("health_path").notNull().default("/"),
    // ---- end app configuration
    // ---- gateway: per-app settings for the host's HTTPS gateway (their CHECKs are written inline
    // in the migration: adding them here would make drizzle-kit rebuild the table and its triggers)
    /** Publish the port on every interface even behind a gateway (shown as a warning). */
    publicPort: integer("public_port", { mode: "boolean" }).notNull().default(false),
    /** Stop after this many minutes without a request through the gateway; null: never. */
    idleStopMinutes: integer("idle_stop_minutes"),
    // ---- end gateway
    createdAt: text("created_at").notNull().default(sql`(strftime('%Y-%m-%dT%H:%M:%fZ','now'))`),
    updatedAt: text("updated_at").notNull().default(sql`(strftime('%Y-%m-%dT%H:%M:%fZ','now'))`),
  },
  (t) => [
    check("apps_status_enum", oneOf(t.status, APP_STATUSES)),
    check("apps_health_enum", oneOf(t.health, APP_HEALTH)),
    check("apps_port_range", sql`${t.port} BETWEEN 1024 AND 65535`),
    // A port serves one app per host; unplaced apps (no host) are checked by the service.
    uniqueIndex("apps_host_port").on(t.hostId, t.port),
  ],
);

export type App = typeof apps.$inferSelect;

export interface StartupProgress {
  label: string;
  percent: number | null;
  updatedAt: string;
}

export interface ObservedState {
  status: AppStatus;
  health: AppHealth;
  phase: string | null;
  lastError: string | null;
  at: string;
}

/**
 * Whole GPUs held by apps: one row per (host, device), so two concurrent creates or two console
 * processes placing waiting apps can never assign the same GPU (the insert of the second fails).
 */
export const gpuAssignments = sqliteTable(
  "gpu_assignments",
  {
    hostId: text("host_id").notNull().references(() => hosts.id, { onDelete: "cascade" }),
    device: text("device").notNull(),
    appId: text("app_id").notNull().references(() => apps.id, { onDelete: "cascade" }),
  },
  (t) => [uniqueIndex("gpu_assignments_host_device").on(t.hostId, t.device)],
);
