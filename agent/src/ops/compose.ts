// The compose document of an app, built as data and serialised with `yaml`, and the compose
// runner: `docker compose` (v2 plugin) when it answers, else `docker-compose` (v1), always with
// explicit project name, file and project directory, as an argv array, in a minimal environment.
import { existsSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parse, stringify } from "yaml";
import { z } from "zod";
import type { DeploySpec } from "../contract/spec";
import { OpsError } from "./errors";
import { ExecError, exec as realExec, type Exec } from "./exec";

/** The one service in every app's project. */
export const SERVICE = "app";

// ---------------------------------------------------------------- base template

const ComposeBaseSchema = z.strictObject({
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

/** Where the template sits relative to this module in the source tree and in agent/dist. */
function templateCandidates(): string[] {
  const out: string[] = [];
  for (const rel of ["../../../templates/compose-base.yaml", "../../templates/compose-base.yaml"]) {
    try {
      out.push(fileURLToPath(new URL(rel, import.meta.url)));
    } catch {
      // import.meta.url is not a file URL: only the in-code copy applies
    }
  }
  return out;
}

export interface LoadedBase {
  base: ComposeBase;
  /** The file it came from, or "built-in" for the in-code copy. */
  source: string;
}

/** Reads the base from `path`, else from templates/ beside the agent, else the in-code copy. */
export function loadComposeBase(path?: string): LoadedBase {
  const candidates = path ? [path] : templateCandidates();
  for (const file of candidates) {
    if (!existsSync(file)) {
      if (path) throw new OpsError("INVALID", `compose base template ${file} does not exist`);
      continue;
    }
    const parsed = ComposeBaseSchema.safeParse(parse(readFileSync(file, "utf8")));
    if (!parsed.success) throw new OpsError("INVALID", `compose base template ${file} is not valid: ${parsed.error.message}`);
    return { base: parsed.data, source: file };
  }
  return { base: DEFAULT_COMPOSE_BASE, source: "built-in" };
}

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
    ports: [`${spec.port}:${spec.port}`],
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

// ---------------------------------------------------------------- runner

export interface ComposeProject {
  name: string;
  file: string;
}

export interface ComposeVersion {
  variant: "plugin" | "standalone";
  version: string;
}

/** Aborting `signal` stops the compose process (a deadline or a cancel). */
export interface ComposeCallOptions {
  signal?: AbortSignal;
}

export interface ComposeOps {
  version(): Promise<ComposeVersion>;
  /** `up -d`; with `noStart` the container is (re)created but not started (`up --no-start`). */
  up(project: ComposeProject, opts?: ComposeCallOptions & { forceRecreate?: boolean; noStart?: boolean }): Promise<void>;
  stop(project: ComposeProject, opts?: ComposeCallOptions): Promise<void>;
  restart(project: ComposeProject, opts?: ComposeCallOptions): Promise<void>;
  down(project: ComposeProject, opts?: ComposeCallOptions): Promise<void>;
  /** Creates and starts a detached one-off container of the service running `command`. */
  runDetached(project: ComposeProject, containerName: string, command: string[], opts?: ComposeCallOptions): Promise<void>;
}

export interface ComposeRunnerOptions {
  /** Agent-owned folder used as HOME (so ~/.docker config is ours, not a user's). */
  homeDir: string;
  exec?: Exec;
  timeoutMs?: number;
}

export class ComposeRunner implements ComposeOps {
  private detected: Promise<{ argv: string[]; version: ComposeVersion }> | undefined;
  private readonly exec: Exec;

  constructor(private readonly options: ComposeRunnerOptions) {
    this.exec = options.exec ?? realExec;
  }

  /** The minimal environment compose runs in: `${SECRET}` in a file can only find these. */
  environment(): Record<string, string> {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
      HOME: this.options.homeDir,
      LANG: "C.UTF-8",
    };
    for (const key of ["DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"]) {
      if (process.env[key]) env[key] = process.env[key]!;
    }
    return env;
  }

  /** Decided by exit code: a Docker CLI without the plugin answers `docker compose` with an error. */
  private detect(): Promise<{ argv: string[]; version: ComposeVersion }> {
    this.detected ??= (async () => {
      const env = this.environment();
      try {
        const r = await this.exec(["docker", "compose", "version", "--short"], { env, cwd: this.options.homeDir, timeoutMs: 20_000 });
        return { argv: ["docker", "compose"], version: { variant: "plugin" as const, version: r.stdout.trim() } };
      } catch {
        // no plugin: try the standalone v1 binary
      }
      try {
        const r = await this.exec(["docker-compose", "version", "--short"], { env, cwd: this.options.homeDir, timeoutMs: 20_000 });
        return { argv: ["docker-compose"], version: { variant: "standalone" as const, version: r.stdout.trim() } };
      } catch (err) {
        this.detected = undefined;
        throw new OpsError("FAILED", "neither `docker compose` nor `docker-compose` works on this host", { cause: err });
      }
    })();
    return this.detected;
  }

  async version(): Promise<ComposeVersion> {
    return (await this.detect()).version;
  }

  private async run(project: ComposeProject, args: string[], opts: ComposeCallOptions = {}): Promise<string> {
    const { argv } = await this.detect();
    const dir = dirname(project.file);
    // The project directory is the agent-owned folder of the file, never the workspace: a
    // repository's .env, compose or override files are not in it.
    const command = [...argv, "-p", project.name, "-f", project.file, "--project-directory", dir, ...args];
    const result = await this.exec(command, { env: this.environment(), cwd: dir, timeoutMs: this.options.timeoutMs ?? 600_000, signal: opts.signal });
    return result.stdout;
  }

  async up(project: ComposeProject, opts: ComposeCallOptions & { forceRecreate?: boolean; noStart?: boolean } = {}): Promise<void> {
    const mode = opts.noStart ? ["--no-start"] : ["-d"];
    await this.run(project, ["up", ...mode, "--remove-orphans", ...(opts.forceRecreate ? ["--force-recreate"] : [])], opts);
  }

  async stop(project: ComposeProject, opts?: ComposeCallOptions): Promise<void> {
    await this.run(project, ["stop"], opts);
  }

  async restart(project: ComposeProject, opts?: ComposeCallOptions): Promise<void> {
    await this.run(project, ["restart"], opts);
  }

  async down(project: ComposeProject, opts?: ComposeCallOptions): Promise<void> {
    await this.run(project, ["down", "--remove-orphans", "--volumes"], opts);
  }

  async runDetached(project: ComposeProject, containerName: string, command: string[], opts?: ComposeCallOptions): Promise<void> {
    // `--` ends compose's options: the command is the container's argv, never compose's.
    await this.run(project, ["run", "-d", "--no-deps", "--name", containerName, "--", SERVICE, ...command], opts);
  }
}

/** A compose failure in words an operator can act on. */
export function composeFailure(err: unknown, spec: Pick<DeploySpec, "image" | "port">): OpsError {
  if (err instanceof OpsError) return err;
  const output = err instanceof ExecError ? err.output : String(err);
  if (/port is already allocated|address already in use/i.test(output)) {
    return new OpsError("CONFLICT", `port ${spec.port} is already in use on this host`, { cause: err });
  }
  if (/pull access denied|manifest unknown|not found: manifest|no such host|repository does not exist|failed to resolve reference/i.test(output)) {
    return new OpsError("FAILED", `image ${spec.image} is not on this host and could not be pulled (no registry can be reached)`, { cause: err });
  }
  if (/could not select device driver/i.test(output)) {
    return new OpsError("FAILED", "this host has no NVIDIA container runtime, but GPUs were assigned", { cause: err });
  }
  const lines = output.split("\n").map((l) => l.trim()).filter((l) => l && !/\.\.\. *(done)?$/.test(l));
  return new OpsError("FAILED", `compose failed: ${lines.slice(-4).join(" ") || (err instanceof Error ? err.message : String(err))}`, { cause: err });
}
