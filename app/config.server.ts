// The console's configuration: read once from the environment at start, validated, then handed
// down. Every default serves one machine (see the README's configuration table).
import { join, resolve } from "node:path";
import { z } from "zod";
import { writable } from "../agent/src/config";
import { fieldErrors } from "../agent/src/contract/validation";

export const DEFAULT_BASE_IMAGE = "nvcr.io/nvidia/pytorch:24.10-py3";

const Switch = z
  .string()
  .regex(/^(1|0|true|false|on|off|yes|no)$/i, { error: "must be one of 1/0, true/false, on/off" })
  .transform((v) => /^(1|true|on|yes)$/i.test(v));

/** Whole seconds, at least 1. */
const Seconds = (fallback: number) =>
  z.string().regex(/^\d{1,9}$/, { error: "must be a whole number of seconds" }).transform(Number).refine((n) => n >= 1, { error: "must be at least 1" }).default(fallback);

const EnvSchema = z.object({
  PORT: z
    .string()
    .regex(/^\d{1,5}$/, { error: "must be a port number" })
    .transform(Number)
    .refine((n) => n >= 0 && n <= 65535, { error: "must be a port number" })
    .default(3000),
  HOST: z.string().min(1).default("0.0.0.0"),
  DATABASE_URL: z.string().regex(/^(file:|libsql:|https?:|wss?:)/, { error: "must be a file:, libsql:, https: or wss: URL" }).optional(),
  DATABASE_AUTH_TOKEN: z.string().min(1).optional(),
  DCC_DATA_DIR: z.string().min(1).default("./data"),
  DCC_WORKSPACE_ROOT: z.string().min(1).optional(),
  DCC_BASE_IMAGE: z.string().min(1).default(DEFAULT_BASE_IMAGE),
  DCC_LOCAL_AGENT: Switch.optional(),
  DCC_ALLOW_INSECURE_GIT: Switch.default(false),
  DCC_ALLOWED_GIT_HOSTS: z.string().optional(),
  DCC_ADMIN_TOKEN: z.string().min(16, { error: "must be at least 16 characters" }).optional(),
  DCC_ADMIN_USER: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, { error: "must be a user name (lower-case letters, digits, . _ -)" }).default("admin"),
  DCC_ADMIN_PASSWORD: z.string().min(12, { error: "must be at least 12 characters" }).max(1024).optional(),
  DCC_SESSION_SECRET: z.string().min(32, { error: "must be at least 32 characters" }).optional(),
  DCC_TRUST_PROXY: Switch.default(false),
  DCC_PUBLIC_URL: z.url().optional(),
  DCC_TEMPLATES_DIR: z.string().min(1).optional(),
  DCC_AUTO_CLEANUP_HOURS: z
    .string()
    .regex(/^\d{1,4}(\.\d{1,6})?$/, { error: "must be a number of hours" })
    .transform(Number)
    .refine((h) => h > 0 && h <= 8760, { error: "must be more than 0 and at most 8760 hours" })
    .default(24),
  DCC_SECRET_KEY: z.string().min(32, { error: "must be at least 32 characters" }).optional(),
  DCC_OSV_URL: z.union([z.literal("off"), z.url({ protocol: /^https?$/, error: "must be an http(s) URL or off" })]).default("https://api.osv.dev"),
  DCC_OSV_RECHECK_S: Seconds(86_400),
  DCC_NOTIFY_RETRY_S: Seconds(10),
  DCC_HOST_OFFLINE_ALERT_S: Seconds(60),
});

export interface Config {
  port: number;
  host: string;
  databaseUrl: string;
  databaseAuthToken?: string;
  dataDir: string;
  workspaceRoot: string;
  workspaceRootWarning?: string;
  baseImage: string;
  /** undefined = start one when Docker answers. */
  localAgent?: boolean;
  allowInsecureGit: boolean;
  allowedGitHosts: string[];
  adminToken?: string;
  /** Headless installs: the first admin is created from these when no user exists yet. */
  adminUser: string;
  adminPassword?: string;
  /** Given session secret; otherwise one is generated once under dataDir (loadSessionKey). */
  sessionSecret?: string;
  /** Honour X-Forwarded-For/-Proto from one reverse proxy in front of the console. */
  trustProxy: boolean;
  publicUrl?: string;
  /** Marketplace seed files (templates/marketplace unless DCC_TEMPLATES_DIR says otherwise). */
  templatesDir: string;
  /** Scheduled cleanup of orphans (hosts with autoCleanup on): how often, and how old an orphan must be to go. */
  autoCleanupHours: number;
  /** Project root: where db/migrations, templates/ and build/ live. */
  rootDir: string;
  /** Key that seals stored secrets (webhook signing secrets); else generated once under dataDir. */
  secretKey?: string;
  /** Dependency checks (OSV API base URL, or null when off) and notifications. */
  alerts: { osvUrl: string | null; recheckMs: number; notifyRetryMs: number; hostOfflineMs: number };
}

export class ConfigError extends Error {}


export function loadConfig(env: NodeJS.ProcessEnv, rootDir: string): Config {
  const blankless = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = EnvSchema.safeParse(blankless);
  if (!parsed.success) {
    const detail = Object.entries(fieldErrors(parsed.error)).map(([k, v]) => `${k} ${v}`).join("; ");
    throw new ConfigError(`Invalid configuration: ${detail}`);
  }
  const e = parsed.data;
  const dataDir = resolve(e.DCC_DATA_DIR);
  let workspaceRoot = e.DCC_WORKSPACE_ROOT ? resolve(e.DCC_WORKSPACE_ROOT) : "/opt/dockerstore";
  let workspaceRootWarning: string | undefined;
  if (!e.DCC_WORKSPACE_ROOT && !writable(workspaceRoot)) {
    workspaceRoot = join(dataDir, "dockerstore");
    workspaceRootWarning = `/opt/dockerstore is not writable; app workspaces go to ${workspaceRoot}`;
  }
  return {
    port: e.PORT,
    host: e.HOST,
    databaseUrl: e.DATABASE_URL ?? `file:${join(dataDir, "dcc.db")}`,
    databaseAuthToken: e.DATABASE_AUTH_TOKEN,
    dataDir,
    workspaceRoot,
    workspaceRootWarning,
    baseImage: e.DCC_BASE_IMAGE,
    localAgent: e.DCC_LOCAL_AGENT,
    allowInsecureGit: e.DCC_ALLOW_INSECURE_GIT,
    allowedGitHosts: (e.DCC_ALLOWED_GIT_HOSTS ?? "").split(",").map((h) => h.trim().toLowerCase()).filter(Boolean),
    adminToken: e.DCC_ADMIN_TOKEN,
    adminUser: e.DCC_ADMIN_USER,
    adminPassword: e.DCC_ADMIN_PASSWORD,
    sessionSecret: e.DCC_SESSION_SECRET,
    trustProxy: e.DCC_TRUST_PROXY,
    publicUrl: e.DCC_PUBLIC_URL,
    templatesDir: resolve(e.DCC_TEMPLATES_DIR ?? join(rootDir, "templates/marketplace")),
    autoCleanupHours: e.DCC_AUTO_CLEANUP_HOURS,
    rootDir,
    secretKey: e.DCC_SECRET_KEY,
    alerts: {
      osvUrl: e.DCC_OSV_URL === "off" ? null : e.DCC_OSV_URL.replace(/\/+$/, ""),
      recheckMs: e.DCC_OSV_RECHECK_S * 1000,
      notifyRetryMs: e.DCC_NOTIFY_RETRY_S * 1000,
      hostOfflineMs: e.DCC_HOST_OFFLINE_ALERT_S * 1000,
    },
  };
}
