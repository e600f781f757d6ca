// The compose document of an app, as data: the base template's schema and its in-code copy, the
// labels, `$` escaping, the default container user, and the renderer. Pure and shared: the agent
// deploys what it renders, and the console previews the same document (compose-preview.server.ts).
import { parse, stringify } from "yaml";
import { z } from "zod";
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
  // ---- gateway
  /** A gateway fronts this host's apps: publish the port on 127.0.0.1 only (unless the app opts out). */
  loopbackPorts?: boolean;
  // ---- end gateway
}

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
    // Only these two variables: nothing from the agent's environment reaches the container.
    environment: { HOME: "/app", PORT: String(spec.port) },
    command: ["/bin/sh", "-c", shellCommand(spec.startCommand)],
    // Behind the gateway the port is reachable only from this host (Caddy); Docker's own NAT rules
    // would otherwise open it past any host firewall.
    ports: [input.loopbackPorts && !spec.publicPort ? `127.0.0.1:${spec.port}:${spec.port}` : `${spec.port}:${spec.port}`],
    volumes: [{ type: "bind", source: input.workspace, target: "/app" }],
    labels,
  };
  if (spec.capAdd.length > 0) service.cap_add = [...spec.capAdd];
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

