// Loading the compose base template, and the compose runner: `docker compose` (v2 plugin) when it
// answers, else `docker-compose` (v1), always with explicit project name, file and project
// directory, as an argv array, in a minimal environment. The document itself is built in the
// shared contract (contract/compose.ts), so the console previews exactly what is deployed.
import { existsSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_COMPOSE_BASE, parseComposeBase, SERVICE, type ComposeBase } from "../contract/compose";
import type { DeploySpec } from "../contract/spec";
import { OpsError } from "./errors";
import { ExecError, exec as realExec, type Exec } from "./exec";

// Re-exported for the agent's own modules, which import them from here.
export {
  appLabels,
  DEFAULT_COMPOSE_BASE,
  escapeDollars,
  renderCompose,
  serializeCompose,
  SERVICE,
  shellCommand,
  type ComposeBase,
  type RenderInput,
} from "../contract/compose";

// ---------------------------------------------------------------- base template

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
    const parsed = parseComposeBase(readFileSync(file, "utf8"));
    if ("error" in parsed) throw new OpsError("INVALID", `compose base template ${file} is not valid: ${parsed.error}`);
    return { base: parsed.base, source: file };
  }
  return { base: DEFAULT_COMPOSE_BASE, source: "built-in" };
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
