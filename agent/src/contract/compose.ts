// The compose document of an app, as data: the base template's schema and its in-code copy, the
// labels, `$` escaping, the default container user, and the renderer. Pure and shared: the agent
// deploys what it renders, and the console previews the same document (compose-preview.server.ts).
import { parse, stringify } from "yaml";
import { z } from "zod";
import { MODELS_MOUNT } from "./models";
import type { DeploySpec } from "./spec";

/** The one service in every app's project. */
export const SERVICE = "app";

// ---------------------------------------------------------------- base template

export const ComposeBaseSchema = z.strictObject({
  // Only keys that tune the container; the agent owns everything that names what runs and where.
  service: z.strictObject({
    restart: z.enum(["no", "always", "on-failure", "unless-stopped"]).optional(),
    init: z.boolean().optional(),
    privileged: z.literal(false).optional(),
    cap_drop: z.array(z.string()).optional(),
    security_opt: z.array(z.string()).optional(),
    ipc: z.enum(["private", "shareable", "none"]).optional(),
    read_only: z.boolean().optional(),
    pids_limit: z.number().int().optional(),
    shm_size: z.union([z.string(), z.number()]).optional(),
    stop_grace_period: z.string().optional(),
    stop_signal: z.string().optional(),
    tty: z.boolean().optional(),
    stdin_open: z.boolean().optional(),
    logging: z.strictObject({ driver: z.string(), options: z.record(z.string(), z.string()).optional() }).optional(),
    ulimits: z.record(z.string(), z.unknown()).optional(),
    mem_limit: z.union([z.string(), z.number()]).optional(),
    cpus: z.union([z.string(), z.number()]).optional(),
    oom_score_adj: z.number().int().optional(),
  }),
  network: z.strictObject({ driver: z.string().optional() }).optional(),
});
export type ComposeBase = z.infer<typeof ComposeBaseSchema>;

/**
 * In-code copy of templates/compose-base.yaml, used when the file is not beside the agent (the
 * single-file build copied alone onto a host). A unit test keeps the two identical.
 */
export const DEFAULT_COMPOSE_BASE: ComposeBase = {
  service: {
    restart: "unless-stopped",
    init: true,
    privileged: false,
    cap_drop: ["ALL"],
    security_opt: ["no-new-privileges:true"],
    ipc: "private",
    read_only: false,
    pids_limit: 4096,
    shm_size: "1gb",
    stop_grace_period: "10s",
    tty: false,
    stdin_open: false,
    logging: { driver: "json-file", options: { "max-size": "10m", "max-file": "3" } },
  },
  network: { driver: "bridge" },
};

/** Parses a base template's YAML text: the base, or why it is not valid. */
export function parseComposeBase(text: string): { base: ComposeBase } | { error: string } {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    return { error: (e as Error).message };
  }
  const parsed = ComposeBaseSchema.safeParse(doc);
  return parsed.success ? { base: parsed.data } : { error: parsed.error.message };
}

/** The container user an agent running as root gives apps (otherwise its own uid and gid). */
export const DEFAULT_CONTAINER_UID = 1000;

// ---------------------------------------------------------------- rendering

export interface RenderInput {
  spec: DeploySpec;
  hostId: string;
  /** Real path of the app's workspace, mounted at /app. */
  workspace: string;
  /** Numeric user the container runs as. */
  uid: number;
  gid: number;
  base: ComposeBase;
  /** Agent-owned folder holding the app's secrets, one file per name (mounted read-only, never inlined). */
  secretsDir?: string;
  /** Real path of the host's shared model store (mounted at /models when the spec asks for it). */
  modelsDir?: string;
  // ---- gateway
  /** A gateway fronts this host's apps: publish the port on 127.0.0.1 only (unless the app opts out). */
  loopbackPorts?: boolean;
  // ---- end gateway
}

// ---- app configuration: the container's shell environment and the entrypoint that loads secrets

/** Where the secrets folder appears inside the container. */
export const SECRETS_MOUNT = "/run/dcc-secrets";
/** The user name apps see in USER / LOGNAME (the container runs as a numeric uid). */
export const APP_USER = "app";

/**
 * The entrypoint script (fixed text, no user data): exports each secret file as a variable, puts
 * ~/.local/bin first on the image's own PATH, then runs the command it was given. Set as the
 * entrypoint, so an image whose ENTRYPOINT ignores its arguments still runs the start command, and
 * the image's environment is kept. Values are read from files, so they are never in the compose
 * file, and `$(cat …; printf x)` keeps trailing newlines exactly.
 */
export const ENTRYPOINT_SCRIPT = [
  `if [ -d ${SECRETS_MOUNT} ]; then for f in ${SECRETS_MOUNT}/*; do [ -f "$f" ] || continue; v="$(cat "$f"; printf x)"; export "\${f##*/}=\${v%x}"; done; unset f v; fi`,
  `PATH="$HOME/.local/bin:\${PATH:-/usr/local/bin:/usr/bin:/bin}"; export PATH`,
  `exec "$@"`,
].join("\n");

/** The variables every container gets; the app's own `env` cannot name these (see RESERVED_ENV_NAMES). */
export function platformEnvironment(spec: Pick<DeploySpec, "port">): Record<string, string> {
  return { HOME: "/app", PORT: String(spec.port), USER: APP_USER, LOGNAME: APP_USER };
}
// ---- end app configuration

/** Labels every container and network of an app carries. */
export function appLabels(spec: Pick<DeploySpec, "name" | "appId">, hostId: string): Record<string, string> {
  return { "dcc.app": spec.name, "dcc.app-id": spec.appId, "dcc.host": hostId, "dcc.managed": "true" };
}

/**
 * A shell command string for `/bin/sh -c`. sh would read a leading `-` or `+` as its own option,
 * so such a command gets a leading space, which the shell ignores.
 */
export function shellCommand(text: string): string {
  return /^[-+]/.test(text) ? ` ${text}` : text;
}

/** Compose interpolates `$VAR`/`${VAR}` from its own environment; `$$` is a literal `$`. */
export function escapeDollars<T>(value: T): T {
  if (typeof value === "string") return value.replaceAll("$", "$$$$") as T;
  if (Array.isArray(value)) return value.map((v) => escapeDollars(v)) as T;
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, escapeDollars(v)])) as T;
  }
  return value;
}

/** The compose document of one app, as data. Valid for compose v1 (1.27+) and v2: no `version:`. */
export function renderCompose(input: RenderInput): Record<string, unknown> {
  const { spec, base } = input;
  const labels = appLabels(spec, input.hostId);
  const securityOpt = [...new Set([...(base.service.security_opt ?? []), "no-new-privileges:true"])];
  const service: Record<string, unknown> = {
    image: spec.image,
    ...base.service,
    // Enforced whatever the base says: these are the least-privilege guarantees.
    privileged: false,
    cap_drop: ["ALL"],
    security_opt: securityOpt,
    user: `${input.uid}:${input.gid}`,
    working_dir: "/app",
    // The app's env and the platform's variables only: nothing from the agent's environment
    // reaches the container. pip's cache lives in the persistent home (an app may point it elsewhere).
    environment: { PIP_CACHE_DIR: "/app/.cache/pip", ...spec.env, ...platformEnvironment(spec) },
    entrypoint: ["/bin/sh", "-c", ENTRYPOINT_SCRIPT, "dcc-entrypoint"],
    command: ["/bin/sh", "-c", shellCommand(spec.startCommand)],
    // Behind the gateway the port is reachable only from this host (Caddy); Docker's own NAT rules
    // would otherwise open it past any host firewall.
    ports: [input.loopbackPorts && !spec.publicPort ? `127.0.0.1:${spec.port}:${spec.port}` : `${spec.port}:${spec.port}`],
    volumes: [
      { type: "bind", source: input.workspace, target: "/app" },
      ...(input.secretsDir ? [{ type: "bind", source: input.secretsDir, target: SECRETS_MOUNT, read_only: true }] : []),
    ],
    labels,
  };
  if (spec.resources.memoryMiB !== undefined) service.mem_limit = `${spec.resources.memoryMiB}m`;
  if (spec.resources.cpus !== undefined) service.cpus = spec.resources.cpus;
  if (spec.capAdd.length > 0) service.cap_add = [...spec.capAdd];
  // ---- shared model store: the host's store at /models, and the template's flags that point the
  // app at it (options and /models paths only, checked by ModelArgSchema, so no shell text).
  if (spec.modelStore && input.modelsDir) {
    (service.volumes as unknown[]).push({ type: "bind", source: input.modelsDir, target: MODELS_MOUNT });
    if (spec.modelStore.args.length > 0) {
      service.command = ["/bin/sh", "-c", shellCommand(`${spec.startCommand} ${spec.modelStore.args.join(" ")}`)];
    }
  }
  // ---- end shared model store
  if (spec.gpuDevices.length > 0) {
    service.deploy = {
      resources: {
        reservations: {
          devices: [{ driver: "nvidia", device_ids: [...spec.gpuDevices], capabilities: ["gpu"] }],
        },
      },
    };
  }
  const network: Record<string, unknown> = { ...(base.network ?? {}), labels };
  return escapeDollars({ services: { [SERVICE]: service }, networks: { default: network } });
}

/**
 * Every string is written double-quoted: compose v1 reads YAML 1.1, where a plain `on`, `no`, `y`,
 * `0123` or `1e3` is a boolean or a number, while YAML 1.2 reads some of them as strings. Quoted,
 * an app named `on` is the string "on" under both (a label `dcc.app: on` would be True on v1).
 */
export function serializeCompose(doc: Record<string, unknown>): string {
  const text = stringify(doc, { lineWidth: 0, defaultStringType: "QUOTE_DOUBLE", defaultKeyType: "PLAIN" });
  return `# Generated by the dcc agent; rewritten on every deploy.\n${text}`;
}

