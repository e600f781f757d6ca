// Status of each app, derived from what the agent sees: Docker events, port probes and its own
// lifecycle actions. Pure state machine (no timers, no I/O): the manager feeds it, it emits a
// StatusReport whenever something a viewer would notice changed.
import type { StatusReport } from "../contract/reports";
import type { StartupProgress } from "./startup-progress";

/** The phase of a STARTING app that has shown no output and no answer for its stall limit. */
export const STALLED_PHASE = "stalled";

export type Status = StatusReport["status"];
export type Health = StatusReport["health"];
/** What the agent itself is doing to the app: events during it are expected, not failures. */
export type Intent = "deploy" | "stop" | "remove";

/** A container that dies within this long of starting counts as a crash, not a run. */
export const QUICK_DEATH_MS = 10_000;
const LAST_ERROR_MAX = 4000;

export interface DeathInfo {
  exitCode?: number;
  /** Signal from a preceding `kill` event (name or number). */
  signal?: string;
  oom?: boolean;
  /** Last log lines, for a container that exited by itself. */
  logs?: string[];
}

/** What `docker inspect` says about the app's container. */
export interface ContainerSnapshot {
  state: string;
  exitCode?: number;
  /** ms since the epoch */
  startedAt?: number;
}

interface AppRuntime {
  status: Status;
  health: Health;
  phase: string | null;
  lastError: string | null;
  containerState: string | null;
  exitCode: number | undefined;
  commitSha: string | undefined;
  intent: Intent | null;
  /** The agent stopped the container itself: its death is no failure. Cleared by the next start. */
  expectDown: boolean;
  startedAt: number | undefined;
  quickDeaths: number;
  lastEmitted: string | undefined;
  /** While STARTING: the download its output shows. */
  progress: StartupProgress | null;
}

const SIGNALS: Record<string, string> = { "1": "SIGHUP", "2": "SIGINT", "9": "SIGKILL", "15": "SIGTERM" };

export function describeDeath(info: DeathInfo): string {
  let text: string;
  if (info.oom) text = "out of memory: the kernel killed the app";
  else if (info.signal) {
    const name = SIGNALS[info.signal] ?? (info.signal.startsWith("SIG") ? info.signal : `signal ${info.signal}`);
    text = `killed by ${name}${info.exitCode !== undefined ? ` (exit code ${info.exitCode})` : ""}`;
  } else text = `exited with code ${info.exitCode ?? "unknown"}`;
  if (info.logs && info.logs.length > 0) text += `; last output:\n${info.logs.join("\n")}`;
  return text.length <= LAST_ERROR_MAX ? text : `${text.slice(0, LAST_ERROR_MAX - 1)}…`;
}

export class StatusTracker {
  private readonly apps = new Map<string, AppRuntime>();

  constructor(
    private readonly emit: (report: StatusReport) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** Starts tracking an app (idempotent); a new app is STOPPED until something says otherwise. */
  track(app: string, commitSha?: string): void {
    const existing = this.apps.get(app);
    if (existing) {
      if (commitSha) existing.commitSha = commitSha;
      return;
    }
    this.apps.set(app, {
      status: "STOPPED",
      health: "unknown",
      phase: null,
      lastError: null,
      containerState: null,
      exitCode: undefined,
      commitSha,
      intent: null,
      expectDown: false,
      startedAt: undefined,
      quickDeaths: 0,
      lastEmitted: undefined,
      progress: null,
    });
  }

  forget(app: string): void {
    this.apps.delete(app);
  }

  has(app: string): boolean {
    return this.apps.has(app);
  }

  get(app: string): Readonly<Pick<AppRuntime, "status" | "health" | "phase" | "lastError" | "containerState" | "exitCode" | "intent" | "startedAt" | "commitSha">> | undefined {
    return this.apps.get(app);
  }

  names(): string[] {
    return [...this.apps.keys()];
  }

  /** The agent starts an action: deploy-like actions show STARTING with the phase. */
  begin(app: string, intent: Intent, phase: string): void {
    const a = this.require(app);
    a.intent = intent;
    a.expectDown = intent === "stop";
    if (intent === "deploy") {
      a.status = "STARTING";
      a.health = "unknown";
      a.phase = phase;
      a.lastError = null;
      a.quickDeaths = 0;
      a.progress = null;
    } else {
      a.phase = phase;
    }
    this.publish(app);
  }

  phase(app: string, phase: string): void {
    const a = this.apps.get(app);
    if (!a || a.phase === phase) return;
    a.phase = phase;
    this.publish(app);
  }

  /**
   * The action finished. The app takes the state of its container as `docker inspect` shows it
   * now; `failure` (a failed action) becomes lastError.
   */
  end(app: string, container: ContainerSnapshot | null, failure?: string, note?: string): void {
    const a = this.apps.get(app);
    if (!a) return;
    a.intent = null;
    a.phase = null;
    if (failure !== undefined) a.lastError = failure.slice(0, LAST_ERROR_MAX);
    this.apply(a, container);
    // Why a deliberate stop happened (e.g. asleep after idle), shown as the stopped app's reason.
    if (note !== undefined && a.status === "STOPPED") a.lastError = note.slice(0, LAST_ERROR_MAX);
    this.publish(app);
  }

  setCommit(app: string, commitSha: string): void {
    const a = this.apps.get(app);
    if (!a || a.commitSha === commitSha) return;
    a.commitSha = commitSha;
    this.publish(app);
  }

  containerStarted(app: string, startedAt = this.now()): void {
    const a = this.apps.get(app);
    if (!a || a.intent === "remove") return;
    a.containerState = "running";
    a.exitCode = undefined;
    a.startedAt = startedAt;
    a.expectDown = false;
    if (a.intent === "deploy") {
      // STARTING with the deploy phase until the action ends and the probe answers.
    } else if (a.quickDeaths > 0) {
      // Docker's restart policy brought a crashing container back: stay red with the reason.
      a.status = "STOPPED";
      a.health = "unknown";
      a.phase = `restarting after a crash (${a.quickDeaths})`;
    } else if (a.status !== "RUNNING") {
      a.status = "STARTING";
      a.health = "unknown";
      a.phase = null;
      a.lastError = null;
    }
    this.publish(app);
  }

  containerDied(app: string, info: DeathInfo): void {
    const a = this.apps.get(app);
    if (!a || a.intent === "remove") return;
    const uptime = a.startedAt === undefined ? Infinity : this.now() - a.startedAt;
    a.containerState = "exited";
    a.exitCode = info.exitCode;
    a.startedAt = undefined;
    if (a.intent === "deploy") {
      this.publish(app);
      return;
    }
    a.status = "STOPPED";
    a.health = "unknown";
    if (a.intent === "stop" || a.expectDown) {
      a.lastError = null;
      a.quickDeaths = 0;
    } else {
      const crashed = !info.signal && !info.oom && uptime < QUICK_DEATH_MS;
      a.quickDeaths = crashed ? a.quickDeaths + 1 : 0;
      a.lastError = describeDeath(info);
      a.phase = null;
    }
    this.publish(app);
  }

  containerRemoved(app: string): void {
    const a = this.apps.get(app);
    if (!a || a.intent === "remove" || a.intent === "deploy") return;
    a.containerState = null;
    a.startedAt = undefined;
    if (a.status !== "STOPPED") {
      a.status = "STOPPED";
      a.health = "unknown";
      a.lastError ??= "the container was removed";
    }
    this.publish(app);
  }

  /** Docker's own healthcheck, when an image defines one. */
  containerHealth(app: string, healthy: boolean): void {
    const a = this.apps.get(app);
    if (!a || a.containerState !== "running") return;
    a.health = healthy ? "reachable" : "unreachable";
    this.publish(app);
  }

  /** Result of a port probe of a running container. */
  probe(app: string, reachable: boolean): void {
    const a = this.apps.get(app);
    if (!a || a.containerState !== "running" || a.intent === "remove" || a.intent === "stop") return;
    if (reachable) {
      a.health = "reachable";
      if (a.intent !== "deploy") {
        a.status = "RUNNING";
        a.phase = null;
        a.lastError = null;
        a.quickDeaths = 0;
      }
    } else {
      a.health = "unreachable";
      if (a.quickDeaths > 0 && a.startedAt !== undefined && this.now() - a.startedAt >= QUICK_DEATH_MS) {
        // It has stayed up after all: no longer a crash loop, just slow to answer.
        a.quickDeaths = 0;
        a.status = "STARTING";
        a.phase = null;
      }
    }
    this.publish(app);
  }

  /** A download the app's output shows while it starts (ignored once it is no longer STARTING). */
  startupProgress(app: string, progress: StartupProgress): void {
    const a = this.apps.get(app);
    if (!a || a.status !== "STARTING") return;
    a.progress = progress;
    this.publish(app);
  }

  /**
   * No output and no answer for the stall limit (`reason`), or output again (`null`): a STARTING
   * app shows phase `stalled` with the reason and stays amber; only a dead container turns it red.
   */
  stalled(app: string, reason: string | null): void {
    const a = this.apps.get(app);
    if (!a || a.status !== "STARTING" || (a.intent && a.intent !== "deploy")) return;
    if (reason) {
      a.phase = STALLED_PHASE;
      a.lastError = reason;
    } else if (a.phase === STALLED_PHASE) {
      a.phase = null;
      a.lastError = null;
    } else return;
    this.publish(app);
  }

  /** How often the app's port should be probed now: fast while starting, slow once running. */
  probeMode(app: string): "fast" | "slow" | null {
    const a = this.apps.get(app);
    if (!a || a.containerState !== "running" || a.intent === "remove" || a.intent === "stop") return null;
    return a.status === "RUNNING" && a.health === "reachable" ? "slow" : "fast";
  }

  /** Puts the app in the state `docker inspect` shows (initial sync, reconnect). */
  sync(app: string, container: ContainerSnapshot | null): void {
    const a = this.apps.get(app);
    if (!a || a.intent) return;
    this.apply(a, container);
    this.publish(app);
  }

  private apply(a: AppRuntime, container: ContainerSnapshot | null): void {
    if (!container) {
      a.containerState = null;
      a.startedAt = undefined;
      a.status = "STOPPED";
      a.health = "unknown";
      a.lastError ??= "the app has no container";
    } else if (container.state === "running" || container.state === "restarting") {
      if (a.containerState !== "running") a.startedAt = container.startedAt ?? this.now();
      a.containerState = "running";
      a.exitCode = undefined;
      if (a.status === "STOPPED" && a.quickDeaths === 0) {
        a.status = "STARTING";
        a.health = "unknown";
        a.lastError = null;
      }
    } else {
      a.containerState = container.state;
      a.exitCode = container.exitCode;
      a.startedAt = undefined;
      if (a.expectDown) a.lastError = null;
      else if (a.status !== "STOPPED") a.lastError ??= describeDeath({ exitCode: container.exitCode });
      a.status = "STOPPED";
      a.health = "unknown";
    }
  }

  /** The current report of an app (for inventory and new watchers). */
  current(app: string): StatusReport | undefined {
    const a = this.apps.get(app);
    return a ? this.toReport(app, a) : undefined;
  }

  /** Sends the current report again even if unchanged (a new watcher wants the full picture). */
  republish(app: string): void {
    const a = this.apps.get(app);
    if (!a) return;
    a.lastEmitted = undefined;
    this.publish(app);
  }

  private require(app: string): AppRuntime {
    this.track(app);
    return this.apps.get(app)!;
  }

  private toReport(app: string, a: AppRuntime): StatusReport {
    const report: StatusReport = {
      app,
      status: a.status,
      health: a.health,
      phase: a.phase,
      lastError: a.lastError,
      at: new Date(this.now()).toISOString(),
    };
    if (a.commitSha) report.commitSha = a.commitSha;
    if (a.containerState) report.containerState = a.containerState;
    if (a.status === "STARTING" && a.progress) report.progress = a.progress;
    if (a.exitCode !== undefined) report.exitCode = a.exitCode;
    return report;
  }

  private publish(app: string): void {
    const a = this.apps.get(app);
    if (!a) return;
    // Progress and a stall belong to STARTING only.
    if (a.status !== "STARTING") {
      a.progress = null;
      if (a.phase === STALLED_PHASE) a.phase = null;
    }
    const report = this.toReport(app, a);
    const { at: _at, ...rest } = report;
    const key = JSON.stringify(rest);
    if (key === a.lastEmitted) return;
    a.lastEmitted = key;
    this.emit(report);
  }
}
