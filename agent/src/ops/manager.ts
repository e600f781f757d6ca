// AppManager: the agent's operations on its apps. Runs the lifecycle actions the console sends
// (provision, start, stop, restart, reinstall, update, deinstall) against git, compose and the
// Docker engine, and observes the apps (Docker events, port probes, usage) for the channel.
// Every action re-validates its parameters with the contract's schemas before touching anything,
// runs one at a time per app, and is safe to repeat (commands are delivered at least once).
import Dockerode from "dockerode";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { CleanupParamsSchema, type CleanupResult } from "../contract/cleanup";
import type { HostFacts } from "../contract/facts";
import type { InventoryItem, LogLine, Progress, StatusReport, UsageSample } from "../contract/reports";
import { actionParamsSchema, LIFECYCLE_ACTIONS, type DeploySpec, type LifecycleAction } from "../contract/spec";
import { AppNameSchema, fieldErrors, type RepositoryRules } from "../contract/validation";
import {
  ComposeRunner,
  composeFailure,
  loadComposeBase,
  renderCompose,
  serializeCompose,
  shellCommand,
  type ComposeBase,
  type ComposeOps,
  type ComposeProject,
} from "./compose";
import { OrphanCleaner } from "./cleanup";
import { OpsError, ParamsValidationError, errorMessage } from "./errors";
import { EventFollower, type ContainerEvent } from "./events";
import { collectHostFacts } from "./facts";
import { SimpleGitOps, gitFailure, type GitOps } from "./git";
import { streamLogs, type LogRequest } from "./logs";
import { readGpuUsage, readNvidiaFacts } from "./nvidia";
import { ProbeScheduler, probePort, type Probe } from "./probe";
import { AppStore, sameSpec, type AppRecord } from "./state";
import { StatusTracker, describeDeath, type ContainerSnapshot } from "./status";
import { computeUsage, type DockerStats } from "./usage";
import { Layout, chownTree, removeTree, type AppPaths } from "./workspace";

export type OpsLog = (level: "info" | "warn" | "error", message: string) => void;

export interface AppManagerOptions {
  /** Apps' workspaces live in `<workspaceRoot>/<name>`. */
  workspaceRoot: string;
  /** Agent-owned: git dirs, compose files, app records, HOME for git/compose. Never mounted. */
  stateDir: string;
  hostId: string;
  /** DCC_ALLOW_INSECURE_GIT: also accept http:// and loopback/private repository hosts. */
  allowInsecureGit: boolean;
  /** Numeric user the containers run as; default: the agent's uid, or 1000 when the agent is root. */
  uid?: number;
  gid?: number;
  docker?: Dockerode;
  log: OpsLog;
  /** templates/compose-base.yaml by default (see loadComposeBase). */
  composeBasePath?: string;
  git?: GitOps;
  compose?: ComposeOps;
  probe?: Probe;
  /** How often CPU/memory (and GPU) usage is sampled while watching; default 10 s. */
  usageIntervalMs?: number;
  /** Longest an install command may run; default 60 min. */
  installTimeoutMs?: number;
}

export interface ApplyResult {
  commitSha?: string;
  message?: string;
}

export interface LogOptions extends LogRequest {
  /** Called once when the log stream ends (error set when it could not start). */
  onEnd?: (error?: Error) => void;
}

const KILL_ATTRIBUTION_MS = 10_000;
const CRASH_LOG_LINES = 15;
const OUTPUT_LINE_MAX = 4000;
const OUTPUT_BATCH = 50;

interface AppContainer {
  id: string;
  snapshot: ContainerSnapshot;
}

export class AppManager {
  private readonly options: AppManagerOptions;
  private readonly docker: Dockerode;
  private readonly layout: Layout;
  private readonly store: AppStore;
  private readonly git: GitOps;
  private readonly compose: ComposeOps;
  private readonly rules: RepositoryRules;
  private readonly uid: number;
  private readonly gid: number;
  private readonly base: ComposeBase;
  private readonly tracker: StatusTracker;
  private readonly prober: ProbeScheduler;
  private readonly follower: EventFollower;
  private readonly records = new Map<string, AppRecord>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly eventQueues = new Map<string, Promise<void>>();
  /** The app's service container as last seen: events of replaced containers are ignored. */
  private readonly current = new Map<string, string>();
  private readonly kills = new Map<string, { signal: string; at: number }>();
  private readonly ooms = new Set<string>();
  private readonly statusListeners = new Set<(r: StatusReport) => void>();
  private readonly usageListeners = new Set<(u: UsageSample) => void>();
  private usageTimer: NodeJS.Timeout | null = null;
  private gpuAvailable: boolean | undefined;
  private initialized: Promise<void> | undefined;
  private cleaner: OrphanCleaner | undefined;

  constructor(options: AppManagerOptions) {
    // The host id goes into labels and event filters: keep it to a plain token.
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(options.hostId)) throw new OpsError("INVALID", "host id must be a plain token");
    this.options = options;
    this.docker = options.docker ?? new Dockerode();
    this.layout = new Layout(options.workspaceRoot, options.stateDir);
    this.rules = { allowInsecure: options.allowInsecureGit };
    this.store = new AppStore(`${this.layout.stateDir}/apps`, this.rules);
    this.git = options.git ?? new SimpleGitOps({ homeDir: this.layout.homeDir, allowInsecure: options.allowInsecureGit });
    this.compose = options.compose ?? new ComposeRunner({ homeDir: this.layout.homeDir });
    const own = { uid: process.getuid?.() ?? 1000, gid: process.getgid?.() ?? 1000 };
    // Non-root in the container: the agent's own uid (so it can always clean up), 1000 when root.
    this.uid = options.uid ?? (own.uid === 0 ? 1000 : own.uid);
    this.gid = options.gid ?? (own.gid === 0 || own.uid === 0 ? 1000 : own.gid);
    const loaded = loadComposeBase(options.composeBasePath);
    this.base = loaded.base;
    this.tracker = new StatusTracker((report) => this.onReport(report));
    this.prober = new ProbeScheduler({
      probe: options.probe ?? ((port) => probePort(port)),
      port: (app) => this.records.get(app)?.spec.port,
      mode: (app) => this.tracker.probeMode(app),
      onResult: (app, result) => this.tracker.probe(app, result.reachable),
    });
    this.prober.stopAll();
    this.follower = new EventFollower({
      docker: this.docker,
      hostId: options.hostId,
      onEvent: (event) => this.onEvent(event),
      onConnected: () => void this.resyncAll(),
      log: (message) => options.log("warn", message),
    });
  }

  /** Creates the folders and loads the app records; every public method awaits it. */
  init(): Promise<void> {
    this.initialized ??= (async () => {
      await this.layout.init();
      for (const name of await this.store.names()) {
        try {
          const record = await this.store.read(name);
          if (!record) continue;
          this.records.set(name, record);
          if (record.provisioned) this.tracker.track(name, record.commitSha ?? undefined);
        } catch (err) {
          this.options.log("error", `ignoring app record ${name}: ${errorMessage(err)}`);
        }
      }
    })();
    return this.initialized;
  }

  // ------------------------------------------------------------------ lifecycle

  /**
   * Runs one lifecycle action on app `app`. `params` are checked against the contract's schema
   * for the action first; invalid parameters throw ParamsValidationError and nothing is touched.
   */
  async apply(app: string, action: LifecycleAction, params: unknown, progress: (p: Progress) => void = () => {}): Promise<ApplyResult> {
    const { spec, clean } = this.validate(app, action, params);
    await this.init();
    const report = safeProgress(progress);
    return this.exclusive(app, async () => {
      switch (action) {
        case "provision":
          return this.provision(spec!, report);
        case "start":
          return this.start(app);
        case "stop":
          return this.stop(app);
        case "restart":
          return this.restart(app);
        case "reinstall":
          return this.reinstall(spec!, clean, report);
        case "update":
          return this.update(spec!, report);
        case "deinstall":
          return this.deinstall(app, report);
      }
    });
  }

  private validate(app: string, action: LifecycleAction, params: unknown): { spec?: DeploySpec; clean: boolean } {
    if (!(LIFECYCLE_ACTIONS as readonly string[]).includes(action)) throw new ParamsValidationError({ action: "is not a known action" });
    if (!AppNameSchema.safeParse(app).success) throw new ParamsValidationError({ app: "must be a DNS label" });
    const parsed = actionParamsSchema(this.rules)[action].safeParse(params ?? {});
    if (!parsed.success) throw new ParamsValidationError(fieldErrors(parsed.error));
    const data = parsed.data as { spec?: DeploySpec; clean?: boolean };
    if (data.spec && data.spec.name !== app) throw new ParamsValidationError({ "spec.name": `must be the command's app (${app})` });
    return { spec: data.spec, clean: data.clean ?? false };
  }

  private async provision(spec: DeploySpec, progress: (p: Progress) => void): Promise<ApplyResult> {
    const existing = this.records.get(spec.name);
    if (existing && existing.spec.appId !== spec.appId) {
      throw new OpsError("CONFLICT", `app name ${spec.name} is already used by another app on this host`);
    }
    if (existing?.provisioned) {
      if (sameSpec(existing.spec, spec)) {
        return { commitSha: existing.commitSha ?? undefined, message: "already provisioned" };
      }
      return this.update(spec, progress);
    }
    const paths = await this.layout.paths(spec.name);
    if (existing) {
      // A provision cut short earlier (agent restart): clear what it left and start over.
      await this.teardown(spec.name, paths, true);
    } else if ((await dirEntries(paths.workspace)) > 0) {
      throw new OpsError("CONFLICT", `workspace ${paths.workspace} already exists and is not managed by this agent`);
    }
    const record: AppRecord = { spec, commitSha: null, branch: null, provisioned: false, updatedAt: new Date().toISOString() };
    await this.saveRecord(record);
    this.tracker.track(spec.name);
    this.tracker.begin(spec.name, "deploy", "validate");
    try {
      progress({ step: "validate", message: "checking image and port" });
      await this.ensureImage(spec.image, progress);
      await assertPortFree(spec.port);

      this.tracker.phase(spec.name, "clone");
      const cloned = await this.git
        .clone({ url: spec.repository, gitDir: paths.gitDir, workTree: paths.workspace, onProgress: progress })
        .catch((err) => Promise.reject(gitFailure(err, spec.repository)));
      await this.handOver(paths.workspace);
      record.commitSha = cloned.commitSha;
      record.branch = cloned.branch;
      this.tracker.setCommit(spec.name, cloned.commitSha);

      await this.writeCompose(spec, paths, progress);
      await this.install(spec, paths, progress);
      this.tracker.phase(spec.name, "start");
      progress({ step: "start", message: "starting the container" });
      await this.compose.up(this.project(paths)).catch((err) => Promise.reject(composeFailure(err, spec)));

      record.provisioned = true;
      record.updatedAt = new Date().toISOString();
      await this.saveRecord(record);
    } catch (err) {
      const failure = errorMessage(err);
      this.options.log("warn", `provision of ${spec.name} failed: ${failure}`);
      progress({ step: "cleanup", message: "removing what the failed provision created" });
      this.tracker.begin(spec.name, "remove", "cleanup");
      await this.teardown(spec.name, paths, true).catch((e) => this.options.log("error", `cleanup of ${spec.name} failed: ${errorMessage(e)}`));
      this.tracker.end(spec.name, null, failure);
      this.tracker.forget(spec.name);
      throw err;
    }
    await this.settle(spec.name);
    return { commitSha: record.commitSha ?? undefined, message: `provisioned at ${record.commitSha?.slice(0, 12)}` };
  }

  private async start(app: string): Promise<ApplyResult> {
    const { record, paths } = await this.requireApp(app);
    const container = await this.findContainer(app);
    if (container?.snapshot.state === "running") return { commitSha: record.commitSha ?? undefined, message: "already running" };
    this.tracker.begin(app, "deploy", "start");
    try {
      // `up -d` starts a stopped container and recreates a missing one: start always converges.
      await this.compose.up(this.project(paths)).catch((err) => Promise.reject(composeFailure(err, record.spec)));
    } catch (err) {
      await this.settle(app, errorMessage(err));
      throw err;
    }
    await this.settle(app);
    return { commitSha: record.commitSha ?? undefined, message: "started" };
  }

  private async stop(app: string): Promise<ApplyResult> {
    const { record, paths } = await this.requireApp(app);
    this.tracker.begin(app, "stop", "stop");
    try {
      await this.compose.stop(this.project(paths)).catch((err) => Promise.reject(composeFailure(err, record.spec)));
    } catch (err) {
      await this.settle(app, errorMessage(err));
      throw err;
    }
    this.prober.cancel(app);
    await this.settle(app);
    return { commitSha: record.commitSha ?? undefined, message: "stopped" };
  }

  private async restart(app: string): Promise<ApplyResult> {
    const { record, paths } = await this.requireApp(app);
    const container = await this.findContainer(app);
    this.tracker.begin(app, "deploy", "restart");
    try {
      const project = this.project(paths);
      await (container ? this.compose.restart(project) : this.compose.up(project)).catch((err) => Promise.reject(composeFailure(err, record.spec)));
    } catch (err) {
      await this.settle(app, errorMessage(err));
      throw err;
    }
    await this.settle(app);
    return { commitSha: record.commitSha ?? undefined, message: "restarted" };
  }

  private async reinstall(spec: DeploySpec, clean: boolean, progress: (p: Progress) => void): Promise<ApplyResult> {
    const { record, paths } = await this.requireApp(spec.name, spec.appId);
    if (!record.branch) throw new OpsError("FAILED", `app ${spec.name} has no recorded branch; deinstall and provision it again`);
    this.tracker.begin(spec.name, "deploy", "fetch");
    try {
      if (spec.image !== record.spec.image) await this.ensureImage(spec.image, progress);
      if (spec.port !== record.spec.port) await assertPortFree(spec.port);
      const project = this.project(paths);
      await this.git
        .fetch({ url: spec.repository, gitDir: paths.gitDir, workTree: paths.workspace, branch: record.branch, onProgress: progress })
        .catch((err) => Promise.reject(gitFailure(err, spec.repository)));
      // The container is stopped while the work tree changes: nothing races git or the chown.
      this.tracker.phase(spec.name, "checkout");
      progress({ step: "stop", message: "stopping the app while its code changes" });
      await this.compose.stop(project).catch((err) => Promise.reject(composeFailure(err, record.spec)));
      const { commitSha } = await this.git
        .checkout({ gitDir: paths.gitDir, workTree: paths.workspace, branch: record.branch, clean, keepPaths: spec.keepPaths, onProgress: progress })
        .catch((err) => Promise.reject(gitFailure(err, spec.repository)));
      await this.handOver(paths.workspace);
      record.spec = spec;
      record.commitSha = commitSha;
      record.updatedAt = new Date().toISOString();
      await this.saveRecord(record);
      this.tracker.setCommit(spec.name, commitSha);
      await this.writeCompose(spec, paths, progress);
      await this.install(spec, paths, progress);
      this.tracker.phase(spec.name, "start");
      progress({ step: "start", message: "recreating the container" });
      await this.compose.up(project, { forceRecreate: true }).catch((err) => Promise.reject(composeFailure(err, spec)));
    } catch (err) {
      await this.settle(spec.name, errorMessage(err));
      throw err;
    }
    await this.settle(spec.name);
    return { commitSha: record.commitSha ?? undefined, message: `reinstalled at ${record.commitSha?.slice(0, 12)}` };
  }

  private async update(spec: DeploySpec, progress: (p: Progress) => void): Promise<ApplyResult> {
    const { record, paths } = await this.requireApp(spec.name, spec.appId);
    if (spec.repository !== record.spec.repository) {
      throw new OpsError("INVALID", "the repository of an installed app cannot change; deinstall it and provision it again");
    }
    if (sameSpec(spec, record.spec)) return { commitSha: record.commitSha ?? undefined, message: "no change" };
    const previous = record.spec;
    this.tracker.begin(spec.name, "deploy", "compose");
    try {
      if (spec.image !== previous.image) await this.ensureImage(spec.image, progress);
      if (spec.port !== previous.port) await assertPortFree(spec.port);
      await this.writeCompose(spec, paths, progress);
      if (spec.installCommand !== previous.installCommand || spec.image !== previous.image) await this.install(spec, paths, progress);
      this.tracker.phase(spec.name, "start");
      progress({ step: "start", message: "recreating the container" });
      await this.compose.up(this.project(paths), { forceRecreate: true }).catch((err) => Promise.reject(composeFailure(err, spec)));
      record.spec = spec;
      record.updatedAt = new Date().toISOString();
      await this.saveRecord(record);
    } catch (err) {
      // Put the previous compose file back so later start/stop act on what actually runs.
      if (record.spec === previous) await this.writeCompose(previous, paths, () => {}).catch(() => {});
      await this.settle(spec.name, errorMessage(err));
      throw err;
    }
    await this.settle(spec.name);
    return { commitSha: record.commitSha ?? undefined, message: "updated" };
  }

  private async deinstall(app: string, progress: (p: Progress) => void): Promise<ApplyResult> {
    const paths = await this.layout.paths(app);
    const record = this.records.get(app);
    if (record) this.tracker.begin(app, "remove", "remove");
    progress({ step: "remove", message: "removing containers, network and files" });
    this.prober.cancel(app);
    await this.teardown(app, paths, record !== undefined);
    this.tracker.forget(app);
    this.current.delete(app);
    return { message: record ? "deinstalled" : "not installed" };
  }

  // ------------------------------------------------------------------ orphans

  /**
   * Cleanup of orphans (the `cleanup` command): scans for workspaces, git and compose dirs,
   * containers and networks of ours that no app managed here owns, and removes them unless
   * `dryRun`. See ./cleanup.ts. Bad parameters throw ParamsValidationError before anything is read.
   */
  async cleanup(params: unknown): Promise<CleanupResult> {
    const parsed = CleanupParamsSchema.safeParse(params ?? {});
    if (!parsed.success) throw new ParamsValidationError(fieldErrors(parsed.error));
    await this.init();
    this.cleaner ??= new OrphanCleaner({
      workspaceRoot: this.layout.workspaceRoot,
      stateDir: this.layout.stateDir,
      hostId: this.options.hostId,
      docker: this.docker,
      // In memory, and every state file on disk (an unreadable record still protects its app).
      managed: async () => new Set([...this.records.keys(), ...(await this.store.names())]),
      exclusive: (app, task) => this.exclusive(app, task),
      log: this.options.log,
    });
    return this.cleaner.run(parsed.data);
  }

  // ------------------------------------------------------------------ steps

  private async requireApp(app: string, appId?: string): Promise<{ record: AppRecord; paths: AppPaths }> {
    const record = this.records.get(app);
    if (!record?.provisioned) throw new OpsError("NOT_FOUND", `app ${app} is not installed on this host`);
    if (appId !== undefined && record.spec.appId !== appId) {
      throw new OpsError("CONFLICT", `app name ${app} is used by another app on this host`);
    }
    return { record, paths: await this.layout.paths(app) };
  }

  private async saveRecord(record: AppRecord): Promise<void> {
    await this.store.write(record);
    this.records.set(record.spec.name, record);
  }

  private project(paths: AppPaths): ComposeProject {
    return { name: paths.name, file: paths.composeFile };
  }

  /** When the agent runs as root, the workspace belongs to the container's user. */
  private async handOver(workspace: string): Promise<void> {
    if (process.getuid?.() === 0 && this.uid !== 0) await chownTree(workspace, this.uid, this.gid);
  }

  private async writeCompose(spec: DeploySpec, paths: AppPaths, progress: (p: Progress) => void): Promise<void> {
    progress({ step: "compose", message: "writing the compose file" });
    const doc = renderCompose({ spec, hostId: this.options.hostId, workspace: paths.workspace, uid: this.uid, gid: this.gid, base: this.base });
    await mkdir(paths.composeDir, { recursive: true, mode: 0o700 });
    await writeFile(paths.composeFile, serializeCompose(doc), { mode: 0o600 });
  }

  /** The image must be local or pullable; no registry answering is reported as such. */
  private async ensureImage(image: string, progress: (p: Progress) => void): Promise<void> {
    try {
      await this.docker.getImage(image).inspect();
      return;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw new OpsError("FAILED", `Docker did not answer: ${errorMessage(err)}`);
    }
    progress({ step: "compose", message: `pulling image ${image}` });
    try {
      const stream = await this.docker.pull(image);
      await new Promise<void>((resolve, reject) =>
        this.docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve())),
      );
      await this.docker.getImage(image).inspect();
    } catch (err) {
      throw new OpsError("FAILED", `image ${image} is not on this host and could not be pulled (no registry can be reached): ${firstLine(errorMessage(err))}`);
    }
  }

  /**
   * The install command runs once per deploy in a one-off container of the same service (same
   * image, /app, user and least-privilege settings) before the app's container is (re)created;
   * its output streams back as `install` progress. It does not run again on every restart.
   */
  private async install(spec: DeploySpec, paths: AppPaths, progress: (p: Progress) => void): Promise<void> {
    if (!spec.installCommand) return;
    this.tracker.phase(spec.name, "install");
    progress({ step: "install", message: "running the install command" });
    const name = `${spec.name}-install`;
    await this.removeContainer(name);
    try {
      await this.compose.runDetached(this.project(paths), name, ["/bin/sh", "-c", shellCommand(spec.installCommand)]);
    } catch (err) {
      await this.removeContainer(name);
      throw composeFailure(err, spec);
    }
    const container = this.docker.getContainer(name);
    const tail: string[] = [];
    let batch: string[] = [];
    const flush = () => {
      if (batch.length) progress({ step: "install", output: batch });
      batch = [];
    };
    const timer = setInterval(flush, 500);
    const abort = new AbortController();
    const logs = streamLogs(this.docker, name, spec.name, { tail: 10_000, follow: true }, (line) => {
      const text = line.line.slice(0, OUTPUT_LINE_MAX);
      batch.push(text);
      tail.push(text);
      if (tail.length > CRASH_LOG_LINES) tail.shift();
      if (batch.length >= OUTPUT_BATCH) flush();
    }, abort.signal).catch(() => {});
    let exitCode: number;
    const timeout = setTimeout(() => void container.kill().catch(() => {}), this.options.installTimeoutMs ?? 3_600_000);
    try {
      exitCode = ((await container.wait()) as { StatusCode: number }).StatusCode;
      await Promise.race([logs, new Promise((r) => setTimeout(r, 2000))]);
    } finally {
      clearTimeout(timeout);
      abort.abort();
      clearInterval(timer);
      flush();
      await this.removeContainer(name);
    }
    if (exitCode !== 0) {
      throw new OpsError("FAILED", `the install command exited with code ${exitCode}${tail.length ? `; last output:\n${tail.join("\n")}` : ""}`);
    }
    progress({ step: "install", message: "install command finished" });
  }

  private async removeContainer(idOrName: string): Promise<void> {
    try {
      await this.docker.getContainer(idOrName).remove({ force: true, v: true });
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
  }

  /** Removes everything an app has on this host; safe on a half-made or missing app. */
  private async teardown(app: string, paths: AppPaths, removeWorkspace: boolean): Promise<void> {
    try {
      await readdir(paths.composeDir);
      await this.compose.down(this.project(paths));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") this.options.log("warn", `compose down of ${app}: ${errorMessage(err)}`);
    }
    // Whatever compose did not remove (no file, failed down): by label.
    const labels = [`dcc.app=${app}`, `dcc.host=${this.options.hostId}`, "dcc.managed=true"];
    for (const c of await this.docker.listContainers({ all: true, filters: { label: labels } })) await this.removeContainer(c.Id);
    for (const n of await this.docker.listNetworks({ filters: { label: labels } })) {
      await this.docker.getNetwork(n.Id).remove().catch((err: { statusCode?: number }) => {
        if (err.statusCode !== 404) throw err;
      });
    }
    await removeTree(paths.composeDir);
    await removeTree(paths.gitDir);
    if (removeWorkspace) await removeTree(paths.workspace);
    await this.store.remove(app);
    this.records.delete(app);
  }

  /** After an action: the app takes its container's real state; a dead container shows its last lines. */
  private async settle(app: string, failure?: string): Promise<void> {
    const container = await this.findContainer(app).catch(() => null);
    if (container) this.current.set(app, container.id);
    else this.current.delete(app);
    let why = failure;
    if (why === undefined && container && container.snapshot.state !== "running" && container.snapshot.state !== "restarting" && this.tracker.get(app)?.intent === "deploy") {
      why = describeDeath({ exitCode: container.snapshot.exitCode, logs: await this.lastLines(container.id) });
    }
    this.tracker.end(app, container?.snapshot ?? null, why);
    this.prober.schedule(app, true);
  }

  private async findContainer(app: string): Promise<AppContainer | null> {
    const list = await this.docker.listContainers({
      all: true,
      filters: { label: [`dcc.app=${app}`, `dcc.host=${this.options.hostId}`, "dcc.managed=true"] },
    });
    const mine = list.filter((c) => c.Labels?.["com.docker.compose.oneoff"] !== "True").sort((a, b) => b.Created - a.Created)[0];
    if (!mine) return null;
    try {
      const info = await this.docker.getContainer(mine.Id).inspect();
      const started = Date.parse(info.State.StartedAt);
      return {
        id: mine.Id,
        snapshot: { state: info.State.Status, exitCode: info.State.ExitCode, startedAt: Number.isNaN(started) ? undefined : started },
      };
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return null;
      throw err;
    }
  }

  private async lastLines(containerId: string): Promise<string[]> {
    const lines: string[] = [];
    try {
      await streamLogs(this.docker, containerId, "x", { tail: CRASH_LOG_LINES, follow: false }, (l) => lines.push(l.line.slice(0, 400)));
    } catch {
      // logs are a courtesy; the exit code is the fact
    }
    return lines;
  }

  private exclusive<T>(app: string, task: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(app) ?? Promise.resolve();
    const run = previous.then(task, task);
    const settled = run.catch(() => {});
    this.locks.set(app, settled);
    void settled.then(() => {
      if (this.locks.get(app) === settled) this.locks.delete(app);
    });
    return run;
  }

  // ------------------------------------------------------------------ observe

  /**
   * Follows Docker events, probes ports and samples usage, reporting through the callbacks until
   * the returned function is called. The current status of every app is reported at once.
   */
  watch(onStatus: (report: StatusReport) => void, onUsage?: (sample: UsageSample) => void): () => void {
    this.statusListeners.add(onStatus);
    if (onUsage) this.usageListeners.add(onUsage);
    const first = this.statusListeners.size === 1;
    void this.init().then(() => {
      if (!this.statusListeners.has(onStatus)) return;
      if (first) {
        this.prober.resume();
        this.follower.start();
        this.startUsage();
      }
      for (const app of this.tracker.names()) {
        const current = this.tracker.current(app);
        if (current) onStatus(current);
      }
    });
    return () => {
      this.statusListeners.delete(onStatus);
      if (onUsage) this.usageListeners.delete(onUsage);
      if (this.statusListeners.size === 0) {
        this.follower.stop();
        this.prober.stopAll();
        if (this.usageTimer) clearInterval(this.usageTimer);
        this.usageTimer = null;
      }
    };
  }

  /** Stops watching and timers; the manager can still run actions afterwards. */
  close(): void {
    this.statusListeners.clear();
    this.usageListeners.clear();
    this.follower.stop();
    this.prober.stopAll();
    if (this.usageTimer) clearInterval(this.usageTimer);
    this.usageTimer = null;
  }

  private onReport(report: StatusReport): void {
    for (const listener of this.statusListeners) {
      try {
        listener(report);
      } catch (err) {
        this.options.log("error", `status listener failed: ${errorMessage(err)}`);
      }
    }
  }

  /** Events of one app are handled in order; different apps do not wait for each other. */
  private onEvent(event: ContainerEvent): void {
    if (event.oneoff || !this.tracker.has(event.app)) return;
    const previous = this.eventQueues.get(event.app) ?? Promise.resolve();
    const next = previous.then(() => this.handleEvent(event)).catch((err) => this.options.log("error", `event of ${event.app}: ${errorMessage(err)}`));
    this.eventQueues.set(event.app, next);
  }

  private async handleEvent(event: ContainerEvent): Promise<void> {
    const app = event.app;
    if (event.action !== "start" && event.action !== "create") {
      const current = this.current.get(app);
      if (current && current !== event.containerId) return;
    }
    switch (event.action) {
      case "start":
        this.current.set(app, event.containerId);
        this.kills.delete(app);
        this.ooms.delete(app);
        this.tracker.containerStarted(app, event.time || Date.now());
        this.prober.schedule(app, true);
        return;
      case "kill":
        if (event.signal) this.kills.set(app, { signal: event.signal, at: event.time || Date.now() });
        return;
      case "oom":
        this.ooms.add(app);
        return;
      case "die": {
        this.prober.cancel(app);
        const kill = this.kills.get(app);
        this.kills.delete(app);
        const oom = this.ooms.delete(app);
        const signal = kill && (event.time || Date.now()) - kill.at < KILL_ATTRIBUTION_MS ? kill.signal : undefined;
        const state = this.tracker.get(app);
        // A container that ended by itself: its last lines say why (crash loop shown with them).
        const logs = !signal && !oom && !state?.intent ? await this.lastLines(event.containerId) : undefined;
        this.tracker.containerDied(app, { exitCode: event.exitCode, signal, oom, logs });
        return;
      }
      case "destroy":
        this.current.delete(app);
        this.tracker.containerRemoved(app);
        return;
      case "health":
        this.tracker.containerHealth(app, event.healthy === true);
        return;
      default:
        return;
    }
  }

  /** After (re)connecting to the event stream: take every app's state from Docker again. */
  private async resyncAll(): Promise<void> {
    await this.init();
    for (const app of this.tracker.names()) {
      try {
        const container = await this.findContainer(app);
        if (container) this.current.set(app, container.id);
        this.tracker.sync(app, container?.snapshot ?? null);
        this.prober.schedule(app, true);
      } catch (err) {
        this.options.log("warn", `resync of ${app}: ${errorMessage(err)}`);
      }
    }
  }

  private startUsage(): void {
    if (this.usageTimer) return;
    this.usageTimer = setInterval(() => void this.sampleUsage(), this.options.usageIntervalMs ?? 10_000);
    this.usageTimer.unref?.();
  }

  private async sampleUsage(): Promise<void> {
    if (this.usageListeners.size === 0) return;
    const running = this.tracker.names().filter((app) => this.tracker.get(app)?.containerState === "running");
    if (running.length === 0) return;
    this.gpuAvailable ??= (await readNvidiaFacts(false)) !== null;
    const gpu = this.gpuAvailable ? await readGpuUsage() : new Map<string, { gpuMemoryMiB: number; gpuUtilPct?: number }>();
    await Promise.all(
      running.map(async (app) => {
        try {
          const container = await this.findContainer(app);
          if (!container || container.snapshot.state !== "running") return;
          const stats = (await this.docker.getContainer(container.id).stats({ stream: false })) as unknown as DockerStats;
          const sample: UsageSample = { app, ...computeUsage(stats), at: new Date().toISOString() };
          const g = gpu.get(container.id);
          if (g) {
            sample.gpuMemoryMiB = g.gpuMemoryMiB;
            if (g.gpuUtilPct !== undefined) sample.gpuUtilPct = g.gpuUtilPct;
          }
          for (const listener of this.usageListeners) listener(sample);
        } catch (err) {
          this.options.log("warn", `usage of ${app}: ${errorMessage(err)}`);
        }
      }),
    );
  }

  // ------------------------------------------------------------------ queries

  /** Every installed app with its commit, container state and status (for hello). */
  async inventory(): Promise<InventoryItem[]> {
    await this.init();
    const items: InventoryItem[] = [];
    for (const [app, record] of this.records) {
      if (!record.provisioned) continue;
      const container = await this.findContainer(app).catch(() => null);
      const state = container?.snapshot.state ?? null;
      const tracked = this.tracker.current(app);
      let status: InventoryItem["status"];
      if (state !== "running") status = "STOPPED";
      else status = tracked?.status === "RUNNING" ? "RUNNING" : "STARTING";
      items.push({ app, appId: record.spec.appId, commitSha: record.commitSha, containerState: state, status });
    }
    return items;
  }

  /** The current status report of one app, if it is installed. */
  status(app: string): StatusReport | undefined {
    return this.tracker.current(app);
  }

  /**
   * Log lines of app `name`: the last `tail` lines, then live ones when `follow`. Returns a
   * function that stops following.
   */
  logs(name: string, options: LogOptions, onLine: (line: LogLine) => void): () => void {
    const abort = new AbortController();
    void (async () => {
      if (!AppNameSchema.safeParse(name).success) throw new OpsError("INVALID", "app name must be a DNS label");
      await this.init();
      if (!this.records.get(name)?.provisioned) throw new OpsError("NOT_FOUND", `app ${name} is not installed on this host`);
      const container = await this.findContainer(name);
      if (!container) throw new OpsError("NOT_FOUND", `app ${name} has no container`);
      await streamLogs(this.docker, container.id, name, options, onLine, abort.signal);
    })().then(
      () => options.onEnd?.(),
      (err: unknown) => options.onEnd?.(err instanceof Error ? err : new Error(String(err))),
    );
    return () => abort.abort();
  }

  /** The last `tail` log lines of app `name` (no follow). */
  tailLogs(name: string, tail: number): Promise<LogLine[]> {
    return new Promise((resolve, reject) => {
      const lines: LogLine[] = [];
      this.logs(name, { tail, follow: false, onEnd: (err) => (err ? reject(err) : resolve(lines)) }, (line) => lines.push(line));
    });
  }

  /** Docker and compose versions, NVIDIA runtime and GPUs, addresses: the facts for hello. */
  async facts(agentVersion?: string): Promise<HostFacts> {
    return collectHostFacts({ docker: this.docker, compose: this.compose, agentVersion, workspaceRoot: this.layout.workspaceRoot });
  }
}

function safeProgress(progress: (p: Progress) => void): (p: Progress) => void {
  return (p) => {
    try {
      const out = p.output?.map((l) => l.slice(0, OUTPUT_LINE_MAX));
      if (out && out.length > 200) {
        for (let i = 0; i < out.length; i += 200) progress({ ...p, output: out.slice(i, i + 200) });
        return;
      }
      progress(out ? { ...p, output: out } : p);
    } catch {
      // a failing progress sink must not fail the action
    }
  };
}

function firstLine(text: string): string {
  return text.split("\n").find((l) => l.trim())?.trim() ?? text;
}

async function dirEntries(path: string): Promise<number> {
  try {
    return (await readdir(path)).length;
  } catch {
    return 0;
  }
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
