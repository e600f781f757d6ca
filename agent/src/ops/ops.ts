// The ops layer as the agent uses it: builds the real ports (git, compose, containers) unless a
// test hands its own, the observer, the install runner and the actions, loads the app records,
// and answers the host-wide questions (inventory, logs, facts, cleanup of orphans).
import Dockerode from "dockerode";
import type { CleanupParams, CleanupResult } from "../contract/cleanup";
import { DEFAULT_CONTAINER_UID } from "../contract/compose";
import type { HostFacts } from "../contract/facts";
import type { InventoryItem, LogLine, Progress, StatusReport, UsageSample } from "../contract/reports";
import { AppActions } from "./actions";
import { OrphanCleaner } from "./cleanup";
import { ComposeRunner, loadComposeBase, type ComposeOps } from "./compose";
import { DockerContainers, type ContainerOps } from "./containers";
import { OpsError, errorMessage, formatDuration } from "./errors";
import { collectHostFacts } from "./facts";
import { SimpleGitOps, type GitOps, type ResolveHost } from "./git";
import { InstallRunner } from "./install";
import { AppObserver, type OpsLog } from "./observer";
import type { Probe } from "./probe";
import { AppRecords, AppStore } from "./app-records";
import { AppSecrets } from "./app-secrets";
import { redact } from "../contract/app-config";
import { Steps } from "./steps";
import { Layout } from "./workspace";
import { join } from "node:path";
import { MODELS_DIR_NAME } from "../contract/models";
import { GpuGate } from "./gpu-gate";
import { readGpuLedger } from "./gpu-ledger";
import { readPreflight } from "./preflight";

export interface OpsOptions {
  /** Apps' workspaces live in `<workspaceRoot>/<name>`. */
  workspaceRoot: string;
  /** Agent-owned: git dirs, compose files, app records, HOME for git/compose. Never mounted. */
  stateDir: string;
  hostId: string;
  /** DCC_ALLOW_INSECURE_GIT: also accept http:// and loopback/private repository hosts. */
  allowInsecureGit: boolean;
  /** Runs a task holding an app's place in the command queue (orphan cleanup must not race an action). */
  exclusive: <T>(app: string, task: () => Promise<T>) => Promise<T>;
  log: OpsLog;
  /** Numeric user the containers run as; default: the agent's uid, or 1000 when the agent is root. */
  uid?: number;
  gid?: number;
  /** A gateway fronts the apps (DCC_GATEWAY_DOMAIN): ports are published on 127.0.0.1 only. */
  loopbackPorts?: boolean;
  docker?: Dockerode;
  git?: GitOps;
  /** How git's host names are resolved for the address check (tests); the real DNS lookup by default. */
  resolveHost?: ResolveHost;
  compose?: ComposeOps;
  containers?: ContainerOps;
  probe?: Probe;
  /** templates/compose-base.yaml by default (see loadComposeBase). */
  composeBasePath?: string;
  usageIntervalMs?: number;
  installTimeoutMs?: number;
  /** DCC_CLONE_TIMEOUT_S and DCC_PULL_TIMEOUT_S, in ms. */
  cloneTimeoutMs?: number;
  pullTimeoutMs?: number;
  /** The shared model store (DCC_MODELS_DIR); default `<workspaceRoot>/.models`. */
  modelsDir?: string;
}

export class Ops {
  readonly actions: AppActions;
  readonly observer: AppObserver;
  readonly secrets: AppSecrets;
  private readonly layout: Layout;
  private readonly records: AppRecords;
  private readonly containers: ContainerOps;
  private readonly compose: ComposeOps;
  private readonly docker: Dockerode;
  private readonly cleaner: OrphanCleaner;
  private readonly git: GitOps;
  private readonly steps: Steps;
  private readonly log: OpsLog;
  readonly modelsDir: string;
  private readonly hostId: string;

  private constructor(o: OpsOptions) {
    // The host id goes into labels and event filters: keep it to a plain token.
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(o.hostId)) throw new OpsError("INVALID", "host id must be a plain token");
    this.docker = o.docker ?? new Dockerode();
    this.hostId = o.hostId;
    this.layout = new Layout(o.workspaceRoot, o.stateDir);
    const rules = { allowInsecure: o.allowInsecureGit };
    this.records = new AppRecords(new AppStore(`${this.layout.stateDir}/apps`, rules));
    // What the ops layer logs never holds a secret value of any app on this host.
    const log: OpsLog = (level, message) => o.log(level, this.secrets ? redact(message, this.secrets.allCached()) : message);
    this.log = log;
    const git = (this.git = o.git ?? new SimpleGitOps({
        homeDir: this.layout.homeDir,
        allowInsecure: o.allowInsecureGit,
        cloneTimeoutMs: o.cloneTimeoutMs,
        storeDir: this.layout.storesDir,
        gitDirs: this.layout.gitDirs,
        resolveHost: o.resolveHost,
      }));
    this.compose = o.compose ?? new ComposeRunner({ homeDir: this.layout.homeDir });
    this.containers = o.containers ?? new DockerContainers(this.docker, o.hostId);
    const own = { uid: process.getuid?.() ?? 1000, gid: process.getgid?.() ?? 1000 };
    // Non-root in the container: the agent's own uid (so it can always clean up), 1000 when root.
    const uid = o.uid ?? (own.uid === 0 ? DEFAULT_CONTAINER_UID : own.uid);
    const gid = o.gid ?? (own.gid === 0 || own.uid === 0 ? DEFAULT_CONTAINER_UID : own.gid);
    const secrets = new AppSecrets({ layout: this.layout, uid, gid });
    this.secrets = secrets;
    this.observer = new AppObserver({
      hide: (app, text) => redact(text, secrets.cached(app)),
      docker: this.docker,
      containers: this.containers,
      hostId: o.hostId,
      port: (app) => this.records.get(app)?.spec.port,
      healthPath: (app) => this.records.get(app)?.spec.healthPath,
      stallSeconds: (app) => this.records.get(app)?.spec.startupStallSeconds,
      probe: o.probe,
      usageIntervalMs: o.usageIntervalMs,
      log,
    });
    this.modelsDir = o.modelsDir ?? join(this.layout.workspaceRoot, MODELS_DIR_NAME);
    const docker = this.docker;
    const gpuGate = new GpuGate({
      ledger: () => this.gpuLedger(),
      preflight: async () => readPreflight(((await docker.info()) as { Runtimes?: Record<string, unknown> }).Runtimes),
      imageConfig: async (image) => ((await docker.getImage(image).inspect()) as { Config?: { Env?: string[]; Labels?: Record<string, string> } }).Config ?? null,
    });
    const steps = (this.steps = new Steps({ hostId: o.hostId, compose: this.compose, containers: this.containers, base: loadComposeBase(o.composeBasePath).base, uid, gid, loopbackPorts: o.loopbackPorts, pullTimeoutMs: o.pullTimeoutMs, log, secrets: this.secrets, modelsDir: this.modelsDir, gpuGate }));
    const install = new InstallRunner({ compose: this.compose, containers: this.containers, timeoutMs: o.installTimeoutMs });
    this.actions = new AppActions({ layout: this.layout, records: this.records, observer: this.observer, git, compose: this.compose, containers: this.containers, steps, install, log, hide: (app, text) => redact(text, this.secrets.cached(app)) });
    this.cleaner = new OrphanCleaner({
      workspaceRoot: this.layout.workspaceRoot,
      stateDir: this.layout.stateDir,
      hostId: o.hostId,
      docker: this.docker,
      managed: () => this.records.names(),
      exclusive: o.exclusive,
      log,
    });
  }

  /** Creates the folders and loads the app records; rejects (nothing started) when they cannot be made. */
  static async create(o: OpsOptions): Promise<Ops> {
    const ops = new Ops(o);
    await ops.layout.init();
    const records = await ops.records.load((name, err) => o.log("error", `ignoring app record ${name}: ${errorMessage(err)}`));
    for (const r of records) {
      // Known before any report can quote them (a failure restored from the record, a crash's last lines).
      await ops.secrets.values(r.spec.name).catch(() => []);
      ops.observer.track(r.spec.name, r.commitSha ?? undefined);
      // A first deploy that failed before this agent started still says why.
      if (!r.provisioned && r.lastError) ops.observer.restoreFailure(r.spec.name, r.lastError);
    }
    return ops;
  }

  /** The app's state now (container inspected, port probed); undefined when the app is not on this host. */
  observe(app: string): Promise<StatusReport | undefined> {
    return this.observer.observe(app);
  }

  watch(onStatus: (r: StatusReport) => void, onUsage?: (u: UsageSample) => void): () => void {
    return this.observer.watch(onStatus, onUsage);
  }

  /** Orphans first; then (unless a dry run) the object stores lose what no remaining git dir uses. */
  async cleanup(params: CleanupParams): Promise<CleanupResult> {
    const result = await this.cleaner.run(params);
    if (!params.dryRun) await this.git.maintain?.().catch((err) => this.log("warn", `object store maintenance: ${errorMessage(err)}`));
    return result;
  }

  /** Puts an image on the host ahead of the apps that will need it; a present one is left as it is. */
  async prepull(image: string, ctx: { signal: AbortSignal; progress: (p: Progress) => void }): Promise<{ image: string; pulled: boolean; message: string }> {
    if (await this.containers.hasImage(image)) return { image, pulled: false, message: `${image} is already on this host` };
    const t0 = Date.now();
    await this.steps.pull(image, ctx.progress, ctx.signal);
    return { image, pulled: true, message: `pulled ${image} in ${formatDuration(Date.now() - t0)}` };
  }

  /** Every app with a record, with its commit, container state and observation (for hello). */
  async inventory(): Promise<InventoryItem[]> {
    return Promise.all(
      this.records.all().map(async (record): Promise<InventoryItem> => {
        const app = record.spec.name;
        const observed = await this.observer.observe(app).catch(() => this.observer.current(app));
        const state = observed?.containerState ?? null;
        const status = state !== "running" ? "STOPPED" : observed?.status === "RUNNING" ? "RUNNING" : "STARTING";
        return { app, appId: record.spec.appId, commitSha: record.commitSha, containerState: state, status, ...(observed ? { observed } : {}) };
      }),
    );
  }

  /** Log lines of app `app`: the last `tail`, then live ones with follow; returns a stop function. */
  streamLogs(app: string, req: { tail: number; follow: boolean }, onLine: (line: LogLine) => void, onEnd: (error?: Error) => void = () => {}): () => void {
    const abort = new AbortController();
    void (async () => {
      await this.layout.paths(app);
      if (!this.records.get(app)) throw new OpsError("NOT_FOUND", `app ${app} is not installed on this host`);
      const container = await this.containers.findApp(app);
      if (!container) throw new OpsError("NOT_FOUND", `app ${app} has no container`);
      // Every relay of the app's output (a tail, a live follow) hides its secret values.
      const hidden = await this.secrets.values(app);
      const relay = hidden.length ? (line: LogLine) => onLine({ ...line, line: redact(line.line, hidden) }) : onLine;
      await this.containers.logs(container.id, app, req, relay, abort.signal);
    })().then(
      () => onEnd(),
      (err: unknown) => onEnd(err instanceof Error ? err : new Error(String(err))),
    );
    return () => abort.abort();
  }

  tailLogs(app: string, tail: number): Promise<LogLine[]> {
    return new Promise((resolve, reject) => {
      const lines: LogLine[] = [];
      this.streamLogs(app, { tail, follow: false }, (line) => lines.push(line), (err) => (err ? reject(err) : resolve(lines)));
    });
  }

  facts(agentVersion?: string): Promise<HostFacts> {
    return collectHostFacts({ docker: this.docker, compose: this.compose, agentVersion, workspaceRoot: this.layout.workspaceRoot, modelsDir: this.modelsDir, gpuLedger: () => this.gpuLedger() });
  }

  /** Who holds each GPU's memory now (null without nvidia-smi). */
  gpuLedger() {
    return readGpuLedger({
      hostId: this.hostId,
      containers: async () =>
        (await this.docker.listContainers({ all: false })).map((c) => ({ id: c.Id, names: c.Names ?? [], labels: c.Labels ?? {} })),
    });
  }

  // ---- gateway
  /** The apps the host's gateway serves: name, port, idle limit and the current observed status. */
  gatewayApps(): { name: string; port: number; idleStopMinutes: number | null; status: string | undefined }[] {
    return this.records.all().map((r) => ({
      name: r.spec.name,
      port: r.spec.port,
      idleStopMinutes: r.spec.idleStopMinutes ?? null,
      status: this.observer.current(r.spec.name)?.status,
    }));
  }
  // ---- end gateway

  /** Stops watching (events, probes, usage); actions still run. */
  close(): void {
    this.observer.close();
  }
}
