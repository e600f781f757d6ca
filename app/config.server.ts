// The console's configuration: read once from the environment at start, validated, then handed
// down. Every default serves one machine (see the README's configuration table).
import { accessSync, constants, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { z } from "zod";
import { fieldErrors } from "../agent/src/contract/validation";

/** Creates the folder if needed and says whether this process may write there (workspace-root default). */
function writable(dir: string): boolean {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

export const DEFAULT_BASE_IMAGE = "nvcr.io/nvidia/pytorch:24.10-py3";

const Switch = z
  .string()
  .regex(/^(1|0|true|false|on|off|yes|no)$/i, { error: "must be one of 1/0, true/false, on/off" })
  .transform((v) => /^(1|true|on|yes)$/i.test(v));

const Seconds = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d{1,7}$/, { error: "must be a whole number of seconds" })
    .transform(Number)
    .refine((n) => n >= min && n <= max, { error: `must be between ${min} and ${max} seconds` });

const Days = z
  .string()
  .regex(/^\d{1,5}(\.\d{1,6})?$/, { error: "must be a number of days" })
  .transform(Number)
  .refine((d) => d <= 36_500, { error: "must be at most 36500 days" });

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
  DCC_PREPULL_ON_ENROL: Switch.default(true),
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
  DCC_DEADLINE_DEPLOY_S: Seconds(5, 7 * 86_400).default(4 * 3600),
  DCC_DEADLINE_ACTION_S: Seconds(5, 86_400).default(15 * 60),
  DCC_HOST_SILENT_S: Seconds(3, 3600).default(8),
  DCC_RETAIN_EVENTS_DAYS: Days.default(30),
  DCC_RETAIN_OUTPUT_DAYS: Days.default(7),
  DCC_RETAIN_COMMANDS_DAYS: Days.default(30),
  DCC_RETAIN_AUDIT_DAYS: Days.default(400),
  DCC_PRUNE_INTERVAL_S: Seconds(1, 7 * 86_400).default(3600),
  DCC_PASSWORD_LOGIN: Switch.default(true),
  DCC_SECRET_KEY: z.string().min(32, { error: "must be at least 32 characters" }).optional(),
  DCC_OIDC_ISSUER: z.url({ error: "must be the provider's issuer URL" }).optional(),
  DCC_OIDC_CLIENT_ID: z.string().min(1).max(500).optional(),
  DCC_OIDC_CLIENT_SECRET: z.string().min(1).max(1000).optional(),
  DCC_OIDC_NAME: z.string().min(1).max(60).regex(/^[^\u0000-\u001f<>]+$/, { error: "must be plain text" }).optional(),
  DCC_OIDC_ADMIN_GROUPS: z.string().max(4000).optional(),
  DCC_OIDC_OPERATOR_GROUPS: z.string().max(4000).optional(),
  DCC_OIDC_GROUPS_CLAIM: z.string().regex(/^[A-Za-z0-9_.:/-]{1,100}$/, { error: "must be a claim name" }).default("groups"),
  DCC_OIDC_SCOPES: z.string().regex(/^[\x21-\x7e]+( [\x21-\x7e]+)*$/, { error: "must be space-separated scopes" }).default("openid profile email groups"),
  DCC_OSV_URL: z.union([z.literal("off"), z.url({ protocol: /^https?$/, error: "must be an http(s) URL or off" })]).default("https://api.osv.dev"),
  DCC_OSV_RECHECK_S: Seconds(1, 365 * 86_400).default(86_400),
  DCC_NOTIFY_RETRY_S: Seconds(1, 86_400).default(10),
  DCC_HOST_OFFLINE_ALERT_S: Seconds(1, 86_400).default(60),
});

/** Sign-in with an OpenID Connect provider (authorization code + PKCE). */
export interface OidcConfig {
  issuer: string;
  clientId: string;
  /** Unset: a public client (PKCE only, no client authentication). */
  clientSecret?: string;
  /** What the sign-in button says: "Sign in with <name>". */
  name: string;
  adminGroups: string[];
  operatorGroups: string[];
  groupsClaim: string;
  scopes: string;
  /** http:// issuers are accepted on loopback only (labs, tests). */
  allowInsecure: boolean;
}

const list = (v: string | undefined) => (v ?? "").split(",").map((g) => g.trim()).filter(Boolean);
const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/;

function oidcConfig(e: z.infer<typeof EnvSchema>): OidcConfig | undefined {
  if (!e.DCC_OIDC_ISSUER) {
    if (e.DCC_OIDC_CLIENT_ID) throw new ConfigError("Invalid configuration: DCC_OIDC_CLIENT_ID is set but DCC_OIDC_ISSUER is not");
    if (!e.DCC_PASSWORD_LOGIN) throw new ConfigError("Invalid configuration: DCC_PASSWORD_LOGIN=off needs an identity provider (DCC_OIDC_ISSUER)");
    return undefined;
  }
  const issuer = new URL(e.DCC_OIDC_ISSUER);
  if (issuer.protocol !== "https:" && !(issuer.protocol === "http:" && LOOPBACK.test(issuer.hostname))) {
    throw new ConfigError("Invalid configuration: DCC_OIDC_ISSUER must be an https:// URL (http:// only on loopback)");
  }
  if (!e.DCC_OIDC_CLIENT_ID) throw new ConfigError("Invalid configuration: DCC_OIDC_CLIENT_ID is required with DCC_OIDC_ISSUER");
  return {
    issuer: e.DCC_OIDC_ISSUER,
    clientId: e.DCC_OIDC_CLIENT_ID,
    clientSecret: e.DCC_OIDC_CLIENT_SECRET,
    name: e.DCC_OIDC_NAME ?? issuer.hostname,
    adminGroups: list(e.DCC_OIDC_ADMIN_GROUPS),
    operatorGroups: list(e.DCC_OIDC_OPERATOR_GROUPS),
    groupsClaim: e.DCC_OIDC_GROUPS_CLAIM,
    scopes: e.DCC_OIDC_SCOPES.split(" ").includes("openid") ? e.DCC_OIDC_SCOPES : `openid ${e.DCC_OIDC_SCOPES}`,
    allowInsecure: issuer.protocol === "http:",
  };
}

export interface Config {
  port: number;
  host: string;
  databaseUrl: string;
  databaseAuthToken?: string;
  dataDir: string;
  workspaceRoot: string;
  workspaceRootWarning?: string;
  baseImage: string;
  /** Queue a pre-pull of baseImage on every host right after it enrols (DCC_PREPULL_ON_ENROL). */
  prepullOnEnrol: boolean;
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
  /** How long a delivered command may go unanswered: deploys (provision, reinstall, update, start, restart) and the rest. */
  deadlines: { deployMs: number; actionMs: number };
  /** A host whose agent sent nothing (not even a pong) for this long is offline. */
  hostSilentMs: number;
  /** How long rows are kept (0 = for ever; the audit log is archived before it is pruned), and how often pruning runs. */
  retention: { eventsMs: number; outputMs: number; commandsMs: number; auditMs: number; intervalMs: number };
  /** Project root: where db/migrations, templates/ and build/ live. */
  rootDir: string;
  /** Sign-in with user name and password (DCC_PASSWORD_LOGIN); off leaves only the identity provider. */
  passwordLogin: boolean;
  oidc?: OidcConfig;
  /** Key for secrets at rest (DCC_SECRET_KEY); otherwise one is generated once under dataDir. */
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
    prepullOnEnrol: e.DCC_PREPULL_ON_ENROL,
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
    deadlines: { deployMs: e.DCC_DEADLINE_DEPLOY_S * 1000, actionMs: e.DCC_DEADLINE_ACTION_S * 1000 },
    hostSilentMs: e.DCC_HOST_SILENT_S * 1000,
    retention: {
      eventsMs: e.DCC_RETAIN_EVENTS_DAYS * 86_400_000,
      outputMs: e.DCC_RETAIN_OUTPUT_DAYS * 86_400_000,
      commandsMs: e.DCC_RETAIN_COMMANDS_DAYS * 86_400_000,
      auditMs: e.DCC_RETAIN_AUDIT_DAYS * 86_400_000,
      intervalMs: e.DCC_PRUNE_INTERVAL_S * 1000,
    },
    rootDir,
    passwordLogin: e.DCC_PASSWORD_LOGIN,
    oidc: oidcConfig(e),
    secretKey: e.DCC_SECRET_KEY,
    alerts: {
      osvUrl: e.DCC_OSV_URL === "off" ? null : e.DCC_OSV_URL.replace(/\/+$/, ""),
      recheckMs: e.DCC_OSV_RECHECK_S * 1000,
      notifyRetryMs: e.DCC_NOTIFY_RETRY_S * 1000,
      hostOfflineMs: e.DCC_HOST_OFFLINE_ALERT_S * 1000,
    },
  };
}
