// AppActions: the lifecycle actions on this host's apps (provision, start, stop, restart,
// reinstall, update, deinstall) and the app records they keep. Parameters arrive validated (the
// command gate checked them once) and one action per app runs at a time (the dispatcher's queue).
// Every action recovers from every state: one on an app that is not installed deploys it from the
// spec it carries; a reinstall or update that fails before the new version can start leaves the
// previous one in place and running.
import type { DeploySpec } from "../contract/spec";
import { composeFailure, type ComposeOps } from "./compose";
import type { ContainerOps } from "./containers";
import { Deployer, failureOf, refOf, type ActionContext, type ActionResult } from "./deploy";
import { OpsError, checkAborted, errorMessage } from "./errors";
import { gitFailure, type GitOps } from "./git";
import type { InstallRunner } from "./install";
import type { AppObserver, OpsLog } from "./observer";
import { refToFollow, sameSpec, type AppRecord, type AppRecords } from "./app-records";
import { assertPortFree, exists, type Steps } from "./steps";
import type { AppPaths, Layout } from "./workspace";

export type { ActionContext, ActionResult } from "./deploy";

export interface AppActionsOptions {
  layout: Layout;
  records: AppRecords;
  observer: AppObserver;
  git: GitOps;
  compose: ComposeOps;
  containers: ContainerOps;
  steps: Steps;
  install: InstallRunner;
  log: OpsLog;
  /** Hides the app's secret values in failures kept in its record. */
  hide?: (app: string, text: string) => string;
}

const NO_PROGRESS = () => {};

export class AppActions {
  private readonly deployer: Deployer;

  constructor(private readonly o: AppActionsOptions) {
    this.deployer = new Deployer(o);
  }

  async provision(spec: DeploySpec, ctx: ActionContext): Promise<ActionResult> {
    const record = this.o.records.get(spec.name);
    if (record && record.spec.appId !== spec.appId) throw new OpsError("CONFLICT", `app name ${spec.name} is already used by another app on this host`);
    if (record?.provisioned && !(await this.deployer.needsDeploy(spec.name))) {
      if (sameSpec(record.spec, spec)) return { commitSha: record.commitSha ?? undefined, message: "already provisioned" };
      return this.update(spec, ctx);
    }
    return this.deployer.deploy(spec, ctx);
  }

  async start(app: string, spec: DeploySpec | undefined, ctx: ActionContext): Promise<ActionResult> {
    const installed = await this.installed(app, spec);
    if (!installed) return this.deployer.deploy(this.specFor(app, spec), ctx);
    const { record, paths } = installed;
    const container = await this.o.containers.findApp(app);
    if (container?.snapshot.state === "running") return { commitSha: record.commitSha ?? undefined, message: "already running" };
    this.o.observer.begin(app, "deploy", "start");
    try {
      await this.adoptGpus(record, paths, spec);
      await this.ensureComposeFile(record, paths);
      if (container?.snapshot.state !== "restarting") await assertPortFree(record.spec.port);
      await this.o.steps.checkGpus(record.spec, ctx.force);
      // `up -d` starts a stopped container and recreates a missing one: start always converges.
      await this.o.compose.up(this.project(paths), { signal: ctx.signal }).catch((err) => Promise.reject(composeFailure(err, record.spec)));
    } catch (err) {
      await this.o.observer.settle(app, failureOf(err, ctx.signal));
      throw err;
    }
    await this.o.observer.settle(app);
    return { commitSha: record.commitSha ?? undefined, message: "started" };
  }

  /** `note` becomes the stopped app's reason (e.g. the gateway putting an idle app to sleep). */
  async stop(app: string, ctx: ActionContext, note?: string): Promise<ActionResult> {
    const installed = await this.installed(app);
    if (!installed) return { message: "not installed" };
    const { record, paths } = installed;
    this.o.observer.begin(app, "stop", "stop");
    try {
      await this.ensureComposeFile(record, paths);
      await this.o.compose.stop(this.project(paths), { signal: ctx.signal }).catch((err) => Promise.reject(composeFailure(err, record.spec)));
    } catch (err) {
      await this.o.observer.settle(app, failureOf(err, ctx.signal));
      throw err;
    }
    await this.o.observer.settle(app, undefined, note);
    return { commitSha: record.commitSha ?? undefined, message: note ?? "stopped" };
  }

  async restart(app: string, spec: DeploySpec | undefined, ctx: ActionContext): Promise<ActionResult> {
    const installed = await this.installed(app, spec);
    if (!installed) return this.deployer.deploy(this.specFor(app, spec), ctx);
    const { record, paths } = installed;
    const container = await this.o.containers.findApp(app);
    this.o.observer.begin(app, "deploy", "restart");
    try {
      const regpu = await this.adoptGpus(record, paths, spec);
      await this.ensureComposeFile(record, paths);
      const project = this.project(paths);
      const state = container?.snapshot.state;
      if (state !== "running" && state !== "restarting") {
        await assertPortFree(record.spec.port);
        await this.o.steps.checkGpus(record.spec, ctx.force);
      }
      // New GPU devices need a new container (`up` recreates it); otherwise a plain restart.
      await (container && !regpu ? this.o.compose.restart(project, { signal: ctx.signal }) : this.o.compose.up(project, { signal: ctx.signal })).catch((err) =>
        Promise.reject(composeFailure(err, record.spec)),
      );
    } catch (err) {
      await this.o.observer.settle(app, failureOf(err, ctx.signal));
      throw err;
    }
    await this.o.observer.settle(app);
    return { commitSha: record.commitSha ?? undefined, message: "restarted" };
  }

  /**
   * New code while the old container runs: fetch (and pull) first; only then stop, check out,
   * install and recreate. A failure after the stop checks the previous commit out again, puts the
   * previous compose file back and starts it as it was.
   */
  async reinstall(spec: DeploySpec, clean: boolean, ctx: ActionContext, pin?: string): Promise<ActionResult> {
    const installed = await this.installed(spec.name, spec);
    if (!installed) return this.deployer.deploy(spec, ctx, clean, pin);
    const { record, paths } = installed;
    const { observer, git, steps, compose } = this.o;
    const { signal, progress } = ctx;
    const previous = { spec: record.spec, commitSha: record.commitSha! };
    const wasRunning = (await this.o.containers.findApp(spec.name))?.snapshot.state === "running";
    const project = this.project(paths);
    let stopped = false;
    observer.begin(spec.name, "deploy", "fetch");
    try {
      await steps.ensureImage(spec.image, progress, signal);
      if (spec.port !== previous.spec.port) await assertPortFree(spec.port);
      // A rollback (`pin`) fetches that commit only when the host lacks it; the app's ref stays as it was.
      const fetched = await git
        .fetch({ url: spec.repository, gitDir: paths.gitDir, workTree: paths.workspace, ref: pin ?? refToFollow(spec, record), onProgress: progress, signal })
        .catch((err) => Promise.reject(gitFailure(err, spec.repository)));
      checkAborted(signal);
      observer.phase(spec.name, "checkout");
      stopped = true;
      // The container is stopped while the work tree changes: nothing races git or the chown. With
      // the same commit, no clean and no install command, git restores at most a tracked file the
      // app edited, and the recreate below stops it soon enough.
      if (clean || fetched.commitSha !== previous.commitSha || spec.installCommand) {
        progress({ step: "stop", message: "stopping the app while its code changes" });
        await steps.stopApp(spec.name, signal).catch((err) => Promise.reject(composeFailure(err, previous.spec)));
      }
      const { commitSha } = await git
        .checkout({ gitDir: paths.gitDir, workTree: paths.workspace, commit: fetched.commitSha, clean, keepPaths: spec.keepPaths, submodulesOf: spec.gitSubmodules ? spec.repository : undefined, onProgress: progress, signal })
        .catch((err) => Promise.reject(gitFailure(err, spec.repository)));
      await steps.handOver(paths.workspace);
      observer.setCommit(spec.name, commitSha);
      await steps.writeCompose(spec, paths, progress);
      await steps.prepareModels(spec, paths.workspace);
      observer.phase(spec.name, "install");
      await this.o.install.run(spec, project, progress, signal);
      observer.phase(spec.name, "start");
      progress({ step: "start", message: "recreating the container" });
      await compose.up(project, { forceRecreate: true, signal }).catch((err) => Promise.reject(composeFailure(err, spec)));
      checkAborted(signal);
      record.spec = spec;
      record.commitSha = commitSha;
      if (!pin) Object.assign(record, { branch: fetched.branch, refKind: fetched.refKind, gitRef: spec.gitRef ?? null });
      await this.o.records.save(record);
    } catch (err) {
      const failure = failureOf(err, signal);
      if (stopped) await this.rollback(paths, record, previous, wasRunning, true);
      await observer.settle(spec.name, failure);
      throw err;
    }
    await observer.settle(spec.name);
    return { commitSha: record.commitSha ?? undefined, ...refOf(record), message: `${pin ? "rolled back to" : "reinstalled at"} ${record.commitSha?.slice(0, 12)}` };
  }

  /** New settings by recreating the container; one that was not running is recreated, not started. */
  async update(spec: DeploySpec, ctx: ActionContext): Promise<ActionResult> {
    const installed = await this.installed(spec.name, spec);
    if (!installed) return this.deployer.deploy(spec, ctx);
    const { record, paths } = installed;
    if (spec.repository !== record.spec.repository) {
      throw new OpsError("INVALID", "the repository of an installed app cannot change; deinstall it and provision it again");
    }
    if (sameSpec(spec, record.spec)) return { commitSha: record.commitSha ?? undefined, message: "no change" };
    const { observer, steps, compose } = this.o;
    const { signal, progress } = ctx;
    const previous = { spec: record.spec, commitSha: record.commitSha! };
    const wasRunning = (await this.o.containers.findApp(spec.name))?.snapshot.state === "running";
    const project = this.project(paths);
    const reinstall = Boolean(spec.installCommand) && (spec.installCommand !== previous.spec.installCommand || spec.image !== previous.spec.image);
    let switched = false;
    observer.begin(spec.name, wasRunning ? "deploy" : "stop", "compose");
    try {
      await steps.ensureImage(spec.image, progress, signal);
      if (spec.port !== previous.spec.port) await assertPortFree(spec.port);
      checkAborted(signal);
      switched = true;
      if (reinstall && wasRunning) {
        progress({ step: "stop", message: "stopping the app while its install command runs" });
        await compose.stop(project, { signal }).catch((err) => Promise.reject(composeFailure(err, previous.spec)));
      }
      await steps.writeCompose(spec, paths, progress);
      await steps.prepareModels(spec, paths.workspace);
      if (reinstall) {
        observer.phase(spec.name, "install");
        await this.o.install.run(spec, project, progress, signal);
      }
      observer.phase(spec.name, "start");
      progress({ step: "start", message: wasRunning ? "recreating the container" : "recreating the container (not started: the app was not running)" });
      await compose.up(project, { forceRecreate: true, noStart: !wasRunning, signal }).catch((err) => Promise.reject(composeFailure(err, spec)));
      checkAborted(signal);
      record.spec = spec;
      await this.o.records.save(record);
    } catch (err) {
      const failure = failureOf(err, signal);
      if (switched) await this.rollback(paths, record, previous, wasRunning, false);
      await observer.settle(spec.name, failure);
      throw err;
    }
    await observer.settle(spec.name);
    return { commitSha: record.commitSha ?? undefined, message: wasRunning ? "updated" : "updated (not started)" };
  }

  /** `appId`, when given, must be the app this host has under that name: a newer app that reuses it stays. */
  async deinstall(app: string, ctx: ActionContext, appId?: string): Promise<ActionResult> {
    const paths = await this.o.layout.paths(app);
    const record = this.o.records.get(app);
    if (appId !== undefined && record && record.spec.appId !== appId) return { message: `not removed: ${app} on this host is another app now` };
    if (record) this.o.observer.begin(app, "remove", "remove");
    ctx.progress({ step: "remove", message: "removing containers, network and files" });
    await this.o.steps.teardown(app, paths, record !== undefined);
    // Its git dir is gone: objects only it used leave the host's store (others' stay pinned).
    if (record) await this.o.git.release?.(record.spec.repository).catch((err) => this.o.log("warn", `pruning the object store of ${app}'s repository: ${errorMessage(err)}`));
    await this.o.records.remove(app);
    this.o.observer.forget(app);
    return { message: record ? "deinstalled" : "not installed" };
  }

  // ------------------------------------------------------------------ helpers

  /** The record and paths of an app that is fully installed here, or null when it must be deployed first. */
  private async installed(app: string, spec?: DeploySpec): Promise<{ record: AppRecord; paths: AppPaths } | null> {
    const record = this.o.records.get(app);
    if (record && spec && record.spec.appId !== spec.appId) throw new OpsError("CONFLICT", `app name ${app} is used by another app on this host`);
    if (!record || (await this.deployer.needsDeploy(app))) return null;
    return { record, paths: await this.o.layout.paths(app) };
  }

  private specFor(app: string, spec: DeploySpec | undefined): DeploySpec {
    if (spec) return spec;
    throw new OpsError("NOT_FOUND", `app ${app} is not installed on this host, and the command carries no spec to deploy it from`);
  }

  private project(paths: AppPaths) {
    return this.o.steps.project(paths);
  }

  /**
   * GPUs are assigned when an app starts and released when it stops: a start or restart carries
   * the devices (and memory need) the console chose now, which the installed app takes over.
   * Returns whether they changed (the container must then be recreated).
   */
  private async adoptGpus(record: AppRecord, paths: AppPaths, spec: DeploySpec | undefined): Promise<boolean> {
    if (!spec) return false;
    const same = record.spec.gpuDevices.join(",") === spec.gpuDevices.join(",") && (record.spec.gpuMinMemoryMiB ?? null) === (spec.gpuMinMemoryMiB ?? null);
    if (same) return false;
    record.spec = { ...record.spec, gpuDevices: [...spec.gpuDevices], gpuMinMemoryMiB: spec.gpuMinMemoryMiB ?? null };
    await this.o.records.save(record);
    await this.o.steps.writeCompose(record.spec, paths);
    return true;
  }

  /** A lost compose file is written again from the record (it is derived data). */
  private async ensureComposeFile(record: AppRecord, paths: AppPaths): Promise<void> {
    if (!(await exists(paths.composeFile))) await this.o.steps.writeCompose(record.spec, paths);
  }

  /** Back to the previous commit and compose file, running again if it ran before. Never aborted. */
  private async rollback(paths: AppPaths, record: AppRecord, previous: { spec: DeploySpec; commitSha: string }, wasRunning: boolean, resetTree: boolean): Promise<void> {
    const { git, compose, steps, observer, log } = this.o;
    const app = previous.spec.name;
    try {
      observer.phase(app, "rollback");
      if (resetTree) {
        const submodulesOf = previous.spec.gitSubmodules ? previous.spec.repository : undefined;
        await git.checkout({ gitDir: paths.gitDir, workTree: paths.workspace, commit: previous.commitSha, clean: false, keepPaths: [], submodulesOf, onProgress: NO_PROGRESS });
        await steps.handOver(paths.workspace);
        observer.setCommit(app, previous.commitSha);
      }
      await steps.writeCompose(previous.spec, paths);
      await compose.up(steps.project(paths), { forceRecreate: true, noStart: !wasRunning });
      log("info", `${app}: the previous version is back in place${wasRunning ? " and running" : ""}`);
    } catch (err) {
      log("error", `${app}: putting the previous version back failed: ${errorMessage(err)}`);
    }
    record.spec = previous.spec;
    record.commitSha = previous.commitSha;
  }
}
