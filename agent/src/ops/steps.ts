// The steps the lifecycle actions are made of: image, port, compose file, hand-over of the work
// tree, removal of an app's containers or of everything it has. Each step takes the action's
// signal where it can wait on the outside world.
import { mkdir, readdir, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import type { Progress } from "../contract/reports";
import type { DeploySpec } from "../contract/spec";
import { renderCompose, serializeCompose, type ComposeBase, type ComposeOps, type ComposeProject } from "./compose";
import type { ContainerOps } from "./containers";
import { OpsError, checkAborted, errorMessage, formatDuration } from "./errors";
import { exec } from "./exec";
import { PullProgress, describePull, type PullFigure } from "./pull-progress";
import type { OpsLog } from "./observer";
import { chownTree, containerUserIsOther, removeTree, type AppPaths } from "./workspace";
import type { AppSecrets } from "./app-secrets";
import type { GpuGate } from "./gpu-gate";
import { ensureModelStore, writeModelConfig } from "./model-store";
import { registryOf } from "../contract/app-config";
import { commandRegistryCredential } from "./command-context";

export interface StepsOptions {
  hostId: string;
  compose: ComposeOps;
  containers: ContainerOps;
  base: ComposeBase;
  uid: number;
  gid: number;
  /** A gateway fronts the apps: publish ports on 127.0.0.1 (see renderCompose). */
  loopbackPorts?: boolean;
  /** Longest an image pull may take (DCC_PULL_TIMEOUT_S); default 2 h. */
  pullTimeoutMs?: number;
  log: OpsLog;
  /** The app's secret files (their folder is mounted read-only; values never enter the compose file). */
  secrets?: AppSecrets;
  /** The host's shared model store (mounted at /models for apps that ask for it). */
  modelsDir?: string;
  /** Checks an app's GPUs (memory, CUDA) before its container starts. */
  gpuGate?: GpuGate;
}

/** Least time between two pull progress reports (each one is a database write on the console). */
const PULL_REPORT_MS = 250;

export class Steps {
  constructor(readonly o: StepsOptions) {}

  project(paths: AppPaths): ComposeProject {
    return { name: paths.name, file: paths.composeFile };
  }

  async writeCompose(spec: DeploySpec, paths: AppPaths, progress: (p: Progress) => void = () => {}): Promise<void> {
    progress({ step: "compose", message: "writing the compose file" });
    // The store must exist before compose binds it (Docker would create a root-owned folder).
    if (spec.modelStore && this.o.modelsDir) await ensureModelStore(this.o.modelsDir, this.o.uid, this.o.gid);
    await mkdir(paths.composeDir, { recursive: true, mode: 0o700 });
    const secretsDir = this.o.secrets ? await this.o.secrets.ensureDir(paths) : undefined;
    const doc = renderCompose({ spec, hostId: this.o.hostId, workspace: paths.workspace, uid: this.o.uid, gid: this.o.gid, base: this.o.base, secretsDir, modelsDir: this.o.modelsDir, loopbackPorts: this.o.loopbackPorts });
    await writeFile(paths.composeFile, serializeCompose(doc), { mode: 0o600 });
  }

  /** The app's model-path config file in its work tree (only where no user file is in the way). */
  async prepareModels(spec: DeploySpec, workspace: string): Promise<void> {
    if (!spec.modelStore?.config || !this.o.modelsDir) return;
    const done = await writeModelConfig(workspace, spec.modelStore.config);
    if (done === "kept-user-file") this.o.log("info", `${spec.name}: its own model-path config file is kept; the shared store is still mounted at /models`);
  }

  /** Refuses a start whose GPUs lack the memory or CUDA version the app needs, unless forced. */
  async checkGpus(spec: DeploySpec, force?: boolean): Promise<void> {
    await this.o.gpuGate?.assert(spec, force);
  }

  /** The image must be local or pullable within the pull time limit; a pull reports bytes and percent. */
  async ensureImage(image: string, progress: (p: Progress) => void, signal?: AbortSignal): Promise<void> {
    if (await this.o.containers.hasImage(image)) return;
    await this.pull(image, progress, signal);
  }

  /** Pulls the image (also when present: a pre-pull refreshes the tag), reporting at most every PULL_REPORT_MS. */
  async pull(image: string, progress: (p: Progress) => void, signal?: AbortSignal): Promise<void> {
    progress({ step: "pull", message: `pulling image ${image}`, pct: 0 });
    const ms = this.o.pullTimeoutMs ?? 7_200_000;
    const timeout = AbortSignal.timeout(ms);
    const tally = new PullProgress();
    let sentAt = 0;
    let sentPct = -1;
    const report = (f: PullFigure) => {
      const now = Date.now();
      if (f.pct === sentPct && now - sentAt < 2000) return;
      if (f.pct < 100 && now - sentAt < PULL_REPORT_MS) return;
      sentAt = now;
      sentPct = f.pct;
      progress({ step: "pull", message: describePull(image, f), pct: f.pct, bytes: f.bytes, ...(f.layer ? { layer: `${f.layer} ${f.action ?? ""}`.trim() } : {}) });
    };
    try {
      await this.o.containers.pull(image, signal ? AbortSignal.any([signal, timeout]) : timeout, (e) => report(tally.add(e)));
      if (!(await this.o.containers.hasImage(image))) throw new Error("the pull ended without the image");
      report(tally.finish());
    } catch (err) {
      checkAborted(signal);
      if (timeout.aborted) throw new OpsError("FAILED", `pulling image ${image} took longer than ${formatDuration(ms)} and was stopped`);
      const why = firstLine(errorMessage(err));
      // A private registry's answer, in words: a login is missing, or the one given was refused.
      if (/unauthorized|authentication required|no basic auth credentials/i.test(why)) {
        const host = registryOf(image);
        throw new OpsError(
          "FAILED",
          commandRegistryCredential(host)
            ? `image ${image} could not be pulled: the registry ${host} refused the console's login for it`
            : `image ${image} could not be pulled: the registry${host ? ` ${host}` : ""} needs a login (an admin sets one under registries)`,
        );
      }
      throw new OpsError("FAILED", `image ${image} is not on this host and could not be pulled (no registry can be reached): ${why}`);
    }
  }

  /**
   * When the container's user is not the agent, the workspace belongs to that user. `chown -R -h -P`
   * changes links themselves and never follows one (as chownTree does), in one process instead of
   * two system calls per file through the event loop (thousands of files in an AI repository).
   */
  async handOver(workspace: string): Promise<void> {
    if (!containerUserIsOther(this.o.uid)) return;
    try {
      await exec(["chown", "-R", "-h", "-P", `${this.o.uid}:${this.o.gid}`, "--", workspace], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LC_ALL: "C" } });
    } catch {
      await chownTree(workspace, this.o.uid, this.o.gid); // no GNU chown on this host
    }
  }

  /**
   * Stops the app's container through the Engine API, not `compose stop`: the same SIGTERM and grace
   * period without starting compose (v1 is a Python program: half a second before it does anything).
   */
  async stopApp(app: string, signal?: AbortSignal): Promise<void> {
    const container = await this.o.containers.findApp(app);
    if (!container || (container.snapshot.state !== "running" && container.snapshot.state !== "restarting")) return;
    await this.o.containers.stop(container.id, graceSeconds(this.o.base.service.stop_grace_period), signal);
  }

  /** The app's containers and network go (compose down, then by label); its files stay. */
  async removeContainers(app: string, paths: AppPaths): Promise<void> {
    if (await exists(paths.composeFile)) {
      await this.o.compose.down(this.project(paths)).catch((err) => this.o.log("warn", `compose down of ${app}: ${errorMessage(err)}`));
    }
    await this.o.containers.removeApp(app);
  }

  /** Removes everything an app has on this host except its record; safe on a half-made or missing app. */
  async teardown(app: string, paths: AppPaths, removeWorkspace: boolean): Promise<void> {
    await this.removeContainers(app, paths);
    await removeTree(paths.composeDir);
    await removeTree(paths.gitDir);
    if (removeWorkspace) await removeTree(paths.workspace);
  }
}

/** Compose's duration ("10s", "1m30s", "500ms") in whole seconds for the Engine API; 10 when absent. */
export function graceSeconds(period: string | undefined): number {
  if (!period) return 10;
  let total = 0;
  for (const [, n, unit] of period.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) total += Number(n) * { ms: 0.001, s: 1, m: 60, h: 3600 }[unit as "ms" | "s" | "m" | "h"];
  return Math.max(1, Math.ceil(total || 10));
}

export function firstLine(text: string): string {
  return text.split("\n").find((l) => l.trim())?.trim() ?? text;
}

export async function dirEntries(path: string): Promise<number> {
  try {
    return (await readdir(path)).length;
  } catch {
    return 0;
  }
}

export async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** A complete clone: the git dir has a HEAD (and the record a branch, checked by the caller). */
export function gitDirReady(paths: AppPaths): Promise<boolean> {
  return exists(join(paths.gitDir, "HEAD"));
}

/** Fails fast with a clear reason when something on the host already listens on the port. */
export function assertPortFree(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EADDRINUSE") reject(new OpsError("CONFLICT", `port ${port} is already in use on this host`));
      else resolve(); // e.g. EACCES for a non-root agent: let Docker decide
    });
    server.listen({ port, host: "0.0.0.0", exclusive: true }, () => server.close(() => resolve()));
  });
}
