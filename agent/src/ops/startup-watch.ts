// Watches apps while they start: their live output (attached to the container: Docker's log
// driver holds a line until its `\n`, so tqdm's `\r` redraws would only show at the end) is read
// for download progress, reported at most every PROGRESS_MS per app; an app with no output for its
// stall limit (it has not answered on its port either, or it would be RUNNING) is reported stalled.
import type { StartupProgress } from "./startup-progress";
import { StartupProgressParser } from "./startup-progress";

/** Least time between two progress reports of one app (each is a database write on the console). */
export const PROGRESS_MS = 500;

export interface StartupWatchOptions {
  /** Streams the container's raw output (stdout and stderr apart) until it ends or `signal` aborts. */
  attach: (app: string, onData: (stream: "stdout" | "stderr", data: Buffer) => void, signal: AbortSignal) => Promise<void>;
  stallSeconds: (app: string) => number;
  onProgress: (app: string, progress: StartupProgress) => void;
  /** No output for the stall limit (reason for the operator), or `null` when output came again. */
  onStall: (app: string, reason: string | null) => void;
  now?: () => number;
  /** How often stall limits are checked; default 1 s. */
  tickMs?: number;
}

interface Watched {
  abort: AbortController;
  parsers: Record<"stdout" | "stderr", StartupProgressParser>;
  lastOutput: number;
  stalled: boolean;
  sentAt: number;
  pending: StartupProgress | null;
  timer: NodeJS.Timeout | null;
}

export class StartupWatch {
  private readonly apps = new Map<string, Watched>();
  private ticker: NodeJS.Timeout | null = null;
  private readonly now: () => number;

  constructor(private readonly o: StartupWatchOptions) {
    this.now = o.now ?? Date.now;
  }

  watching(app: string): boolean {
    return this.apps.has(app);
  }

  /** Starts watching `app` (idempotent): its container has just started and it is STARTING. */
  start(app: string): void {
    if (this.apps.has(app)) return;
    const w: Watched = {
      abort: new AbortController(),
      parsers: { stdout: new StartupProgressParser(this.now), stderr: new StartupProgressParser(this.now) },
      lastOutput: this.now(),
      stalled: false,
      sentAt: 0,
      pending: null,
      timer: null,
    };
    this.apps.set(app, w);
    void this.o
      .attach(app, (stream, data) => this.output(app, w, stream, data), w.abort.signal)
      .catch(() => {})
      .finally(() => {
        // The output ended (container gone): the stall clock keeps running until stop() is called.
      });
    this.ensureTicker();
  }

  /** Stops watching (the app answered, stopped, or was removed). */
  stop(app: string): void {
    const w = this.apps.get(app);
    if (!w) return;
    w.abort.abort();
    if (w.timer) clearTimeout(w.timer);
    this.apps.delete(app);
    if (this.apps.size === 0 && this.ticker) {
      clearInterval(this.ticker);
      this.ticker = null;
    }
  }

  close(): void {
    for (const app of [...this.apps.keys()]) this.stop(app);
  }

  /** Checks every watched app's stall limit (the ticker calls it; tests call it directly). */
  checkStalls(): void {
    const now = this.now();
    for (const [app, w] of this.apps) {
      const limit = this.o.stallSeconds(app);
      if (!w.stalled && now - w.lastOutput >= limit * 1000) {
        w.stalled = true;
        this.o.onStall(app, `stalled: no output and no answer on its port for ${formatSeconds(limit)}`);
      }
    }
  }

  private output(app: string, w: Watched, stream: "stdout" | "stderr", data: Buffer): void {
    if (this.apps.get(app) !== w) return;
    w.lastOutput = this.now();
    if (w.stalled) {
      w.stalled = false;
      this.o.onStall(app, null);
    }
    if (w.parsers[stream].push(data.toString("utf8"))) this.offer(app, w, w.parsers[stream].get()!);
  }

  private offer(app: string, w: Watched, p: StartupProgress): void {
    const wait = w.sentAt + PROGRESS_MS - this.now();
    if (wait <= 0) {
      w.sentAt = this.now();
      this.o.onProgress(app, p);
      return;
    }
    w.pending = p;
    w.timer ??= setTimeout(() => {
      w.timer = null;
      if (this.apps.get(app) !== w || !w.pending) return;
      const next = w.pending;
      w.pending = null;
      w.sentAt = this.now();
      this.o.onProgress(app, next);
    }, wait);
  }

  private ensureTicker(): void {
    if (this.ticker) return;
    this.ticker = setInterval(() => this.checkStalls(), this.o.tickMs ?? 1000);
    this.ticker.unref?.();
  }
}

function formatSeconds(s: number): string {
  if (s % 3600 === 0) return `${s / 3600} h`;
  if (s % 60 === 0 && s >= 60) return `${s / 60} min`;
  return `${s} s`;
}
