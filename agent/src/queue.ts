// The one per-app queue: an app's commands (and the orphan cleanup of its leftovers) run one at a
// time, in the order they arrived; different apps do not wait for each other. A task's signal
// aborting while it waits drops it (it never runs); while it runs the task unwinds on its own,
// and if it has not within `graceMs` the queue lets the next one go so an app is never stuck.

interface Slot {
  id: string;
  start: () => void;
  drop: (reason: unknown) => void;
  running: boolean;
}

export class AppQueue {
  private readonly lanes = new Map<string, Slot[]>();

  constructor(private readonly graceMs = 30_000) {}

  /** Runs `task` once every earlier task of `app` is done; rejects with the signal's reason if dropped first. */
  run<T>(app: string, id: string, task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const lane = this.lanes.get(app) ?? [];
      this.lanes.set(app, lane);
      let finished = false;
      const finish = () => {
        if (finished) return;
        finished = true;
        signal?.removeEventListener("abort", onAbort);
        const i = lane.indexOf(slot);
        if (i >= 0) lane.splice(i, 1);
        if (lane.length === 0) {
          if (this.lanes.get(app) === lane) this.lanes.delete(app);
        } else if (i === 0) lane[0]!.start();
      };
      const onAbort = () => {
        if (!slot.running) {
          slot.drop(signal!.reason);
          return;
        }
        // Running: the task sees the same signal; give it time to unwind, then free the lane.
        const t = setTimeout(() => {
          if (finished) return;
          reject(signal!.reason);
          finish();
        }, this.graceMs);
        t.unref?.();
      };
      const slot: Slot = {
        id,
        running: false,
        start: () => {
          slot.running = true;
          task().then(
            (v) => {
              if (!finished) resolve(v);
              finish();
            },
            (e) => {
              if (!finished) reject(e);
              finish();
            },
          );
        },
        drop: (reason) => {
          reject(reason);
          finish();
        },
      };
      lane.push(slot);
      signal?.addEventListener("abort", onAbort, { once: true });
      if (signal?.aborted) return slot.drop(signal.reason);
      if (lane.length === 1) slot.start();
    });
  }

  /** Runs `task` holding `app`'s place in the queue (no command of that app runs meanwhile). */
  exclusive<T>(app: string, task: () => Promise<T>): Promise<T> {
    return this.run(app, `exclusive-${Math.random().toString(36).slice(2)}`, task);
  }

  /** Where command `id` is: waiting, running, or not here. */
  state(id: string): "queued" | "running" | undefined {
    for (const lane of this.lanes.values()) {
      const slot = lane.find((s) => s.id === id);
      if (slot) return slot.running ? "running" : "queued";
    }
    return undefined;
  }
}
