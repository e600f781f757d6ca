// AppObserver: what the agent sees of its apps. It owns the StatusTracker and everything that
// feeds it from outside the actions: the Docker event stream, port probes and usage samples.
// The actions tell it what they are doing (begin, phase, settle); `observe` answers with the
// app's current state after a fresh look (container inspected, port probed once), which is what
// every command result carries.
import type Dockerode from "dockerode";
import type { StatusReport, UsageSample } from "../contract/reports";
import type { AppContainer, ContainerOps } from "./containers";
import { errorMessage } from "./errors";
import { EventFollower, type ContainerEvent } from "./events";
import { readGpuUsage, readNvidiaFacts } from "./nvidia";
import { ProbeScheduler, probePort, type Probe } from "./probe";
import { StatusTracker, describeDeath, type Intent } from "./status";
import { computeUsage } from "./usage";
import { StartupWatch } from "./startup-watch";
import { STALL_DEFAULT_S } from "../contract/models";

export type OpsLog = (level: "info" | "warn" | "error", message: string) => void;

export interface AppObserverOptions {
  docker: Dockerode;
  containers: ContainerOps;
  hostId: string;
  /** The app's published port (from its record). */
  port: (app: string) => number | undefined;
  /** The app's health path (from its record; default `/`). */
  healthPath?: (app: string) => string | undefined;
  probe?: Probe;
  /** The app's stall limit in seconds (from its record); default STALL_DEFAULT_S. */
  stallSeconds?: (app: string) => number | undefined;
  /** Hides the app's secret values in what leaves as a report (lastError can quote app output). */
  hide?: (app: string, text: string) => string;
  /** How often CPU/memory (and GPU) usage is sampled while watching; default 10 s. */
  usageIntervalMs?: number;
  log: OpsLog;
}

const KILL_ATTRIBUTION_MS = 10_000;
const CRASH_LOG_LINES = 15;

export class AppObserver {
  private readonly tracker: StatusTracker;
  private readonly prober: ProbeScheduler;
  private readonly follower: EventFollower;
  private readonly probe: Probe;
  private readonly eventQueues = new Map<string, Promise<void>>();
  /** The app's service container as last seen: events of replaced containers are ignored. */
  private readonly containerOf = new Map<string, string>();
  private readonly kills = new Map<string, { signal: string; at: number }>();
  private readonly ooms = new Set<string>();
  private readonly statusListeners = new Set<(r: StatusReport) => void>();
  private readonly usageListeners = new Set<(u: UsageSample) => void>();
  private usageTimer: NodeJS.Timeout | null = null;
  private gpuAvailable: boolean | undefined;
  private readonly startup: StartupWatch;

  constructor(private readonly o: AppObserverOptions) {
    this.tracker = new StatusTracker((report) => this.onReport(report));
    this.startup = new StartupWatch({
      attach: async (app, onData, signal) => {
        const id = this.containerOf.get(app) ?? (await o.containers.findApp(app))?.id;
        if (id && o.containers.attach) await o.containers.attach(id, onData, signal);
      },
      stallSeconds: (app) => o.stallSeconds?.(app) ?? STALL_DEFAULT_S,
      onProgress: (app, progress) => this.tracker.startupProgress(app, progress),
      onStall: (app, reason) => this.tracker.stalled(app, reason),
    });
    this.probe = o.probe ?? ((port, path) => probePort(port, { path }));
    this.prober = new ProbeScheduler({
      probe: this.probe,
      port: o.port,
      path: o.healthPath,
      mode: (app) => this.tracker.probeMode(app),
      onResult: (app, result) => this.tracker.probe(app, result.reachable),
    });
    this.prober.stopAll();
    this.follower = new EventFollower({
      docker: o.docker,
      hostId: o.hostId,
      onEvent: (event) => this.onEvent(event),
      onConnected: () => void this.resyncAll(),
      log: (message) => o.log("warn", message),
    });
  }

  // ------------------------------------------------------------------ fed by the actions

  track(app: string, commitSha?: string): void {
    this.tracker.track(app, commitSha);
  }

  forget(app: string): void {
    this.startup.stop(app);
    this.prober.cancel(app);
    this.tracker.forget(app);
    this.containerOf.delete(app);
  }

  has(app: string): boolean {
    return this.tracker.has(app);
  }

  begin(app: string, intent: Intent, phase: string): void {
    this.tracker.begin(app, intent, phase);
    if (intent !== "deploy") this.prober.cancel(app);
  }

  phase(app: string, phase: string): void {
    this.tracker.phase(app, phase);
  }

  setCommit(app: string, commitSha: string): void {
    this.tracker.setCommit(app, commitSha);
  }

  /** An app whose last deploy failed (read back from its record): STOPPED with the reason. */
  restoreFailure(app: string, failure: string): void {
    this.tracker.end(app, null, failure);
  }

  /** After an action: the app takes its container's real state; a dead container shows its last lines. */
  async settle(app: string, failure?: string, note?: string): Promise<void> {
    const container = await this.o.containers.findApp(app).catch(() => null);
    this.remember(app, container);
    let why = failure;
    const state = container?.snapshot.state;
    if (why === undefined && container && state !== "running" && state !== "restarting" && this.tracker.get(app)?.intent === "deploy") {
      why = describeDeath({ exitCode: container.snapshot.exitCode, logs: await this.o.containers.lastLines(container.id, CRASH_LOG_LINES) });
    }
    this.tracker.end(app, container?.snapshot ?? null, why, note);
    this.prober.schedule(app, true);
  }

  /**
   * The app's state as of now: its container inspected and, when it runs, its port probed once.
   * Undefined for an app the agent does not track (never installed, or deinstalled).
   */
  async observe(app: string): Promise<StatusReport | undefined> {
    if (!this.tracker.has(app)) return undefined;
    const tracked = this.tracker.get(app);
    if (!tracked?.intent) {
      const container = await this.o.containers.findApp(app).catch(() => undefined);
      if (container !== undefined) {
        this.remember(app, container);
        this.tracker.sync(app, container?.snapshot ?? null);
      }
      const port = this.o.port(app);
      if (port !== undefined && this.tracker.probeMode(app)) {
        const result = await this.probe(port, this.o.healthPath?.(app)).catch(() => ({ reachable: false }));
        this.tracker.probe(app, result.reachable);
        this.prober.schedule(app);
      }
    }
    return this.shown(this.tracker.current(app));
  }

  /** The tracked state without looking again (inventory of many apps, new watchers). */
  current(app: string): StatusReport | undefined {
    return this.shown(this.tracker.current(app));
  }

  names(): string[] {
    return this.tracker.names();
  }

  private remember(app: string, container: AppContainer | null): void {
    if (container) this.containerOf.set(app, container.id);
    else this.containerOf.delete(app);
  }

  // ------------------------------------------------------------------ watching

  /**
   * Follows Docker events, probes ports and samples usage, reporting through the callbacks until
   * the returned function is called. The current status of every app is reported at once.
   */
  watch(onStatus: (report: StatusReport) => void, onUsage?: (sample: UsageSample) => void): () => void {
    this.statusListeners.add(onStatus);
    if (onUsage) this.usageListeners.add(onUsage);
    if (this.statusListeners.size === 1) {
      this.prober.resume();
      this.follower.start();
      this.startUsage();
    }
    for (const app of this.tracker.names()) {
      const current = this.tracker.current(app);
      if (current) onStatus(current);
      if (current?.status === "STARTING" && current.containerState === "running") this.startup.start(app);
    }
    return () => {
      this.statusListeners.delete(onStatus);
      if (onUsage) this.usageListeners.delete(onUsage);
      if (this.statusListeners.size === 0) this.close();
    };
  }

  /** Stops watching and timers; actions can still be observed afterwards. */
  close(): void {
    this.statusListeners.clear();
    this.usageListeners.clear();
    this.follower.stop();
    this.prober.stopAll();
    this.startup.close();
    if (this.usageTimer) clearInterval(this.usageTimer);
    this.usageTimer = null;
  }

  /** A report as it may leave the agent: no secret value in its lastError or progress label (both quote app output). */
  private shown(report: StatusReport | undefined): StatusReport | undefined {
    const hide = this.o.hide;
    if (!report || !hide || (!report.lastError && !report.progress?.label)) return report;
    return {
      ...report,
      ...(report.lastError ? { lastError: hide(report.app, report.lastError) } : {}),
      ...(report.progress?.label ? { progress: { ...report.progress, label: hide(report.app, report.progress.label) } } : {}),
    };
  }

  private onReport(raw: StatusReport): void {
    const report = this.shown(raw)!;
    // Output is read for download progress and stalls only while a running container starts, and
    // only while someone watches (the console's channel): nothing is attached after close().
    if (report.status === "STARTING" && report.containerState === "running" && this.statusListeners.size > 0) this.startup.start(report.app);
    else this.startup.stop(report.app);
    for (const listener of this.statusListeners) {
      try {
        listener(report);
      } catch (err) {
        this.o.log("error", `status listener failed: ${errorMessage(err)}`);
      }
    }
  }

  /** Events of one app are handled in order; different apps do not wait for each other. */
  private onEvent(event: ContainerEvent): void {
    if (event.oneoff || !this.tracker.has(event.app)) return;
    const previous = this.eventQueues.get(event.app) ?? Promise.resolve();
    const next = previous.then(() => this.handleEvent(event)).catch((err) => this.o.log("error", `event of ${event.app}: ${errorMessage(err)}`));
    this.eventQueues.set(event.app, next);
    void next.then(() => {
      if (this.eventQueues.get(event.app) === next) this.eventQueues.delete(event.app);
    });
  }

  private async handleEvent(event: ContainerEvent): Promise<void> {
    const app = event.app;
    if (event.action !== "start" && event.action !== "create") {
      const current = this.containerOf.get(app);
      if (current && current !== event.containerId) return;
    }
    const at = event.time || Date.now();
    switch (event.action) {
      case "start":
        this.containerOf.set(app, event.containerId);
        this.kills.delete(app);
        this.ooms.delete(app);
        this.tracker.containerStarted(app, at);
        // While an action runs (compose has not returned yet) one probe now, at the usual pace after:
        // a published port asked too early can stall for a second in Docker's proxy. The quick pace
        // starts when the action settles, or at once for a start nobody asked for (restart policy).
        this.prober.schedule(app, true, !this.tracker.get(app)?.intent);
        return;
      case "kill":
        if (event.signal) this.kills.set(app, { signal: event.signal, at });
        return;
      case "oom":
        this.ooms.add(app);
        return;
      case "die": {
        this.prober.cancel(app);
        const kill = this.kills.get(app);
        this.kills.delete(app);
        const oom = this.ooms.delete(app);
        const signal = kill && at - kill.at < KILL_ATTRIBUTION_MS ? kill.signal : undefined;
        // A container that ended by itself: its last lines say why (crash loop shown with them).
        const logs = !signal && !oom && !this.tracker.get(app)?.intent ? await this.o.containers.lastLines(event.containerId, CRASH_LOG_LINES) : undefined;
        this.tracker.containerDied(app, { exitCode: event.exitCode, signal, oom, logs });
        return;
      }
      case "destroy":
        this.containerOf.delete(app);
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
    for (const app of this.tracker.names()) {
      try {
        const container = await this.o.containers.findApp(app);
        this.remember(app, container);
        this.tracker.sync(app, container?.snapshot ?? null);
        this.prober.schedule(app, true);
      } catch (err) {
        this.o.log("warn", `resync of ${app}: ${errorMessage(err)}`);
      }
    }
  }

  private startUsage(): void {
    if (this.usageTimer) return;
    this.usageTimer = setInterval(() => void this.sampleUsage(), this.o.usageIntervalMs ?? 10_000);
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
          const container = await this.o.containers.findApp(app);
          if (!container || container.snapshot.state !== "running") return;
          const sample: UsageSample = { app, ...computeUsage(await this.o.containers.stats(container.id)), at: new Date().toISOString() };
          const g = gpu.get(container.id);
          if (g) {
            sample.gpuMemoryMiB = g.gpuMemoryMiB;
            if (g.gpuUtilPct !== undefined) sample.gpuUtilPct = g.gpuUtilPct;
          }
          for (const listener of this.usageListeners) listener(sample);
        } catch (err) {
          this.o.log("warn", `usage of ${app}: ${errorMessage(err)}`);
        }
      }),
    );
  }
}
