// Sleep and wake behind the gateway. Every request that passed the sign-in check counts as use;
// an app with idleStopMinutes that saw no request for that long is stopped (STOPPED, reason
// "asleep after N min idle", its GPU freed), and the next request starts it again and is answered
// with a waking-up page until the app is RUNNING. Which apps sleep is kept in a file, so a
// restarted agent still wakes them.
import { readFileSync, writeFileSync } from "node:fs";
import type { AccessVerdict } from "./auth";

export interface SleepApp {
  idleStopMinutes: number | null | undefined;
  /** The agent's observation: RUNNING / STARTING / STOPPED. */
  status: string | undefined;
}

export interface SleepOptions {
  /** The app's settings and current status, or undefined when it is not on this host. */
  app: (name: string) => SleepApp | undefined;
  apps: () => string[];
  /** Stops the app through its command queue with the given reason. */
  stop: (name: string, reason: string) => Promise<void>;
  /** Starts the app through its command queue. */
  start: (name: string) => Promise<void>;
  stateFile: string;
  log: (level: "info" | "warn" | "error", msg: string, data?: Record<string, unknown>) => void;
  now?: () => number;
  /** How often idle apps are looked for (default 15 s). */
  checkEveryMs?: number;
  /** The length of a minute (tests shorten it). */
  minuteMs?: number;
  /** Whether the app has connections open through the gateway now (a WebSocket session). */
  openConnections?: (name: string) => Promise<number>;
}

export const asleepReason = (minutes: number) => `asleep after ${minutes} min idle`;

export class SleepWake {
  private readonly lastUse = new Map<string, number>();
  private readonly asleep: Set<string>;
  private readonly busy = new Set<string>();
  /** Apps that had a WebSocket (or other upgrade) opened through the gateway since they last woke. */
  private readonly upgraded = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private readonly since: number;

  constructor(private readonly o: SleepOptions) {
    this.asleep = new Set(readList(o.stateFile));
    this.since = this.now();
  }

  private now() {
    return (this.o.now ?? Date.now)();
  }

  start() {
    this.timer = setInterval(() => void this.check(), this.o.checkEveryMs ?? 15_000);
    this.timer.unref();
  }
  stop() {
    if (this.timer) clearInterval(this.timer);
  }

  isAsleep(app: string) {
    return this.asleep.has(app);
  }

  /** A request for `app` passed the sign-in check (`upgrade`: it opens a WebSocket). */
  access(app: string, upgrade = false): AccessVerdict {
    this.lastUse.set(app, this.now());
    if (upgrade) this.upgraded.add(app);
    const a = this.o.app(app);
    if (this.asleep.has(app)) {
      if (a?.status === "RUNNING") {
        this.mark(app, false);
        return { ready: true };
      }
      if (!this.busy.has(app) && a?.status !== "STARTING") this.wake(app);
      return { ready: false, message: "Starting the app after its sleep; this takes as long as its start-up." };
    }
    if (a?.status === "STOPPED") return { ready: false, message: "The app is stopped. Start it from the console." };
    return { ready: true };
  }

  private wake(app: string) {
    this.busy.add(app);
    this.o.log("info", "waking an app on request", { app });
    this.o
      .start(app)
      .catch((e) => this.o.log("error", "could not wake the app", { app, error: (e as Error).message }))
      .finally(() => this.busy.delete(app));
  }

  /** Stops every app idle past its limit (its last request, or the agent's start when none yet). */
  async check(): Promise<void> {
    const now = this.now();
    for (const name of this.o.apps()) {
      const a = this.o.app(name);
      const minutes = a?.idleStopMinutes;
      if (!a || !minutes || a.status !== "RUNNING" || this.asleep.has(name) || this.busy.has(name)) continue;
      const last = this.lastUse.get(name) ?? this.since;
      if (now - last < minutes * (this.o.minuteMs ?? 60_000)) continue;
      // A WebSocket session sends no new requests: while one may be open, the app is in use.
      if (this.upgraded.has(name) && this.o.openConnections) {
        const open = await this.o.openConnections(name).catch(() => 0);
        if (open > 0) {
          this.lastUse.set(name, now);
          continue;
        }
        this.upgraded.delete(name);
      }
      this.busy.add(name);
      this.mark(name, true);
      this.o.log("info", "putting an idle app to sleep", { app: name, idleMinutes: minutes });
      try {
        await this.o.stop(name, asleepReason(minutes));
      } catch (e) {
        this.mark(name, false);
        this.o.log("error", "could not put the app to sleep", { app: name, error: (e as Error).message });
      } finally {
        this.busy.delete(name);
      }
    }
  }

  /** An operator's start/stop ends the sleep state (the app is then as they left it). */
  forget(app: string) {
    if (this.asleep.has(app)) this.mark(app, false);
  }

  private mark(app: string, on: boolean) {
    if (on) this.asleep.add(app);
    else this.asleep.delete(app);
    try {
      writeFileSync(this.o.stateFile, JSON.stringify([...this.asleep]), { mode: 0o600 });
    } catch (e) {
      this.o.log("warn", "could not save which apps sleep", { error: (e as Error).message });
    }
  }
}

function readList(path: string): string[] {
  try {
    const v = JSON.parse(readFileSync(path, "utf8")) as unknown;
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
  } catch {
    return [];
  }
}
