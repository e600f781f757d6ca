// Deploying an app that is not (fully) installed on this host: a first provision, a retry after a
// failed one, or start/restart/update/reinstall of an app whose record, work tree or git dir is
// gone. A completed clone is kept when a later step fails (the record stays, provisioned=false),
// so the retry fetches instead of cloning again; a clone cut short is removed. Only deinstall
// removes everything.
import type { Progress } from "../contract/reports";
import type { DeploySpec } from "../contract/spec";
import { composeFailure } from "./compose";
import { OpsError, checkAborted, errorMessage } from "./errors";
import { gitFailure, type GitOps } from "./git";
import type { InstallRunner } from "./install";
import type { AppObserver, OpsLog } from "./observer";
import { refToFollow, type AppRecord, type AppRecords } from "./app-records";
import { assertPortFree, dirEntries, exists, gitDirReady, type Steps } from "./steps";
import { removeTree, type AppPaths, type Layout } from "./workspace";

export interface ActionContext {
  /** Aborted by a cancel or the command's deadline; the action unwinds and says why. */
  signal: AbortSignal;
  progress: (p: Progress) => void;
  /** Start despite a GPU memory shortfall or CUDA mismatch (apps.start { force }). */
  force?: boolean;
}

export interface ActionResult {
  commitSha?: string;
  message?: string;
  [key: string]: unknown;
}

export interface DeployerOptions {
  layout: Layout;
  records: AppRecords;
  observer: AppObserver;
  git: GitOps;
  steps: Steps;
  install: InstallRunner;
  log: OpsLog;
  /** Hides the app's secret values in the failure kept in its record. */
  hide?: (app: string, text: string) => string;
}

/** The ref an action's result names (the console's deploy history records it). */
export function refOf(record: AppRecord): { ref?: string; refKind?: string } {
  return record.branch ? { ref: record.branch, refKind: record.refKind ?? "branch" } : {};
}

/** The failure as the operator should read it: the abort's reason when the action was stopped. */
export function failureOf(err: unknown, signal: AbortSignal): string {
  if (signal.aborted) return signal.reason instanceof Error ? signal.reason.message : "cancelled";
  return errorMessage(err);
}

export class Deployer {
  constructor(private readonly o: DeployerOptions) {}

  /** Whether `app` must be deployed from a spec before anything else can run on it. */
  async needsDeploy(app: string): Promise<boolean> {
    const record = this.o.records.get(app);
    if (!record?.provisioned || !record.branch) return true;
    const paths = await this.o.layout.paths(app);
    return !(await exists(paths.workspace)) || !(await gitDirReady(paths));
  }

  /** `pin`: deploy this exact commit (a rollback) rather than the newest of the app's ref. */
  async deploy(spec: DeploySpec, ctx: ActionContext, clean = false, pin?: string): Promise<ActionResult> {
    const { records, observer, git, steps, layout } = this.o;
    const { signal, progress } = ctx;
    const name = spec.name;
    const paths = await layout.paths(name);
    const existing = records.get(name);
    if (existing && existing.spec.appId !== spec.appId) {
      throw new OpsError("CONFLICT", `app name ${name} is already used by another app on this host`);
    }
    // A first deploy that failed and is now asked for with another repository starts afresh.
    const otherRepository = existing !== undefined && !existing.provisioned && existing.spec.repository !== spec.repository;
    // The work tree may be removed on failure only if it held nothing of anyone else's: it was
    // empty, or it is what an earlier attempt of ours left (mid-clone, or a clone never deployed).
    const ownWorkTree = (await dirEntries(paths.workspace)) === 0 || (existing !== undefined && (!existing.branch || otherRepository));
    if (!existing && !ownWorkTree) throw new OpsError("CONFLICT", `workspace ${paths.workspace} already exists and is not managed by this agent`);
    // A clone that completed earlier (record with a branch, git dir with a HEAD) of the same repository is reused.
    let cloned = Boolean(existing?.branch && existing.commitSha) && existing?.spec.repository === spec.repository && (await gitDirReady(paths));
    const record: AppRecord = existing
      ? { ...existing, spec, provisioned: false, ...(cloned ? {} : { commitSha: null, branch: null }) }
      : { spec, commitSha: null, branch: null, provisioned: false, updatedAt: "" };
    await records.save(record);
    observer.track(name, record.commitSha ?? undefined);
    observer.begin(name, "deploy", "validate");
    try {
      progress({ step: "validate", message: "checking image and port" });
      // What a deploy cut short left running goes first; the files stay.
      if (existing) await steps.removeContainers(name, paths);
      await assertPortFree(spec.port);
      checkAborted(signal);
      // The image (found, or pulled with progress) and the code arrive at the same time; a failure
      // of either stops the other.
      const both = new AbortController();
      const stopBoth = () => both.abort(signal.reason);
      signal.addEventListener("abort", stopBoth, { once: true });
      const failFast = (err: unknown) => {
        if (!both.signal.aborted) both.abort(err);
        throw err;
      };
      // The compose file needs nothing from either: it is written meanwhile too.
      const composeFile = steps.writeCompose(spec, paths, progress);
      composeFile.catch(() => {});
      try {
        let imageReady = false;
        const image = steps
          .ensureImage(spec.image, progress, both.signal)
          .then(() => void (imageReady = true))
          .catch(failFast);
        image.catch(() => {});
        const submodulesOf = spec.gitSubmodules ? spec.repository : undefined;
        const gitStep = <T,>(p: Promise<T>) => p.catch((err) => failFast(gitFailure(err, spec.repository)));
        let target: string;
        // A fresh clone is already at its commit; a reused one (or a pin) is checked out below.
        let checkout = cloned;
        if (cloned) {
          observer.phase(name, "fetch");
          const fetched = await gitStep(
            git.fetch({ url: spec.repository, gitDir: paths.gitDir, workTree: paths.workspace, ref: pin ?? refToFollow(spec, record), onProgress: progress, signal: both.signal }),
          );
          if (!pin) Object.assign(record, { branch: fetched.branch, refKind: fetched.refKind, gitRef: spec.gitRef ?? null });
          target = fetched.commitSha;
        } else {
          observer.phase(name, "clone");
          await removeTree(paths.gitDir);
          if (ownWorkTree) await removeTree(paths.workspace);
          const result = await gitStep(
            git.clone({ url: spec.repository, gitDir: paths.gitDir, workTree: paths.workspace, ref: spec.gitRef ?? null, submodules: Boolean(submodulesOf) && !pin, onProgress: progress, signal: both.signal }),
          );
          Object.assign(record, { commitSha: result.commitSha, branch: result.branch, refKind: result.refKind, gitRef: spec.gitRef ?? null });
          cloned = true;
          target = result.commitSha;
          checkout = Boolean(pin && pin !== target);
          if (checkout) target = (await gitStep(git.fetch({ url: spec.repository, gitDir: paths.gitDir, workTree: paths.workspace, ref: pin ?? null, onProgress: progress, signal: both.signal }))).commitSha;
        }
        if (checkout) {
          observer.phase(name, "checkout");
          const { commitSha } = await gitStep(
            git.checkout({ gitDir: paths.gitDir, workTree: paths.workspace, commit: target, clean, keepPaths: spec.keepPaths, submodulesOf, onProgress: progress, signal: both.signal }),
          );
          record.commitSha = commitSha;
        }
        await records.save(record);
        // The code is there; what is left is the image (a multi-GB pull reports its own progress).
        if (!imageReady) observer.phase(name, "pull");
        await Promise.all([steps.handOver(paths.workspace), image, composeFile]);
        await steps.prepareModels(spec, paths.workspace);
      } finally {
        signal.removeEventListener("abort", stopBoth);
        await composeFile.catch(() => {}); // settled before an unwind removes its folder
      }
      checkAborted(signal);
      observer.setCommit(name, record.commitSha!);

      observer.phase(name, "install");
      await this.o.install.run(spec, steps.project(paths), progress, signal);
      observer.phase(name, "start");
      await steps.checkGpus(spec, ctx.force);
      progress({ step: "start", message: "starting the container" });
      await steps.o.compose.up(steps.project(paths), { signal }).catch((err) => Promise.reject(composeFailure(err, spec)));
      checkAborted(signal);
      record.provisioned = true;
      record.lastError = null;
      await records.save(record);
    } catch (err) {
      const failure = failureOf(err, signal);
      this.o.log("warn", `deploy of ${name} failed: ${failure}`);
      progress({ step: "cleanup", message: cloned ? "removing the containers; the clone is kept for a retry" : "removing what the failed deploy created" });
      await this.unwind(name, paths, record, cloned, ownWorkTree, failure).catch((e) => this.o.log("error", `cleanup of ${name} failed: ${errorMessage(e)}`));
      await observer.settle(name, failure);
      throw err;
    }
    await observer.settle(name);
    return { commitSha: record.commitSha ?? undefined, ...refOf(record), message: `provisioned at ${record.commitSha?.slice(0, 12)}` };
  }

  /** After a failed deploy: no containers; a complete clone stays, a partial one goes. */
  private async unwind(name: string, paths: AppPaths, record: AppRecord, cloned: boolean, ownWorkTree: boolean, failure: string): Promise<void> {
    const { steps, records } = this.o;
    await steps.removeContainers(name, paths);
    await removeTree(paths.composeDir);
    if (!cloned) {
      await removeTree(paths.gitDir);
      // Only a work tree this deploy started empty: files that were there before are never removed.
      if (ownWorkTree) await removeTree(paths.workspace);
      record.commitSha = null;
      record.branch = null;
    }
    record.provisioned = false;
    record.lastError = this.o.hide ? this.o.hide(name, failure).slice(0, 4000) : failure.slice(0, 4000);
    await records.save(record);
  }
}
