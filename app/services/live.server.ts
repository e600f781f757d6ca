// The live change stream. In-process changes arrive on the ChangeBus at once; one tailer per
// process reads the events table for changes written by other console processes and feeds them
// into the same bus. A subscriber that resumes with a last-event id first gets what it missed.
import { and, asc, eq, gt, max, min } from "drizzle-orm";
import type { Db } from "../../db/client";
import { appEvents, type AppEvent } from "../../db/schema";
import { LiveChangeSchema } from "../live-event.server";
import type { AppChange, ChangeBus, ConsoleContext } from "../context.server";

export function toChange(e: AppEvent): AppChange {
  const change = { ...e.data, id: e.id, type: e.type, app: e.appName, at: e.createdAt };
  const r = LiveChangeSchema.safeParse(change);
  // A row an older version wrote with a type no longer named is passed on as it is.
  return r.success ? r.data : (change as AppChange);
}

/** The newest stored event id: apps listed after reading it reflect every change up to it. */
export async function latestEventId(db: Db): Promise<number> {
  const [r] = await db.select({ id: max(appEvents.id) }).from(appEvents);
  return r?.id ?? 0;
}

/** Polls the events table for ids this process has not published yet. Returns a stop function. */
export function startEventTail(db: Db, bus: ChangeBus, intervalMs = 1000): () => void {
  let last = 0;
  let running = false;
  const seen = new Set<number>();
  bus.subscribe((c) => {
    if (c.id > 0) seen.add(c.id);
  });
  const init = db
    .select({ id: max(appEvents.id) })
    .from(appEvents)
    .then(([r]) => (last = r?.id ?? 0));
  const tick = async () => {
    if (running) return;
    running = true;
    try {
      await init;
      const rows = await db.select().from(appEvents).where(gt(appEvents.id, last)).orderBy(asc(appEvents.id)).limit(1000);
      for (const row of rows) {
        last = row.id;
        if (seen.delete(row.id)) continue;
        bus.publish(toChange(row));
      }
      // Ids at or below `last` can no longer come from the table; forget them.
      for (const id of seen) if (id <= last) seen.delete(id);
    } catch {
      // the next tick tries again
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void tick(), intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

export interface StreamOptions {
  app?: string;
  lastEventId?: number;
  signal?: AbortSignal;
  /** A subscriber this many changes behind is dropped (it resumes by last-event id). */
  maxQueue?: number;
  /** A resume further back than this many events (or from before pruned events) gets `resync`, not a replay. */
  maxReplay?: number;
}

export const MAX_QUEUE = 5000;
export const MAX_REPLAY = 10_000;

/**
 * Yields changes as they happen; with `lastEventId`, first every stored change after it. Bursts
 * are yielded as soon as the consumer takes them: a lone change is never held back.
 */
export async function* changeStream(ctx: Pick<ConsoleContext, "db" | "bus">, opts: StreamOptions): AsyncGenerator<AppChange> {
  const queue: AppChange[] = [];
  let wake: (() => void) | null = null;
  let overflow = false;
  const maxQueue = opts.maxQueue ?? MAX_QUEUE;
  const unsubscribe = ctx.bus.subscribe((c) => {
    if (overflow || (opts.app && c.app !== opts.app)) return;
    // A viewer that does not keep up is dropped rather than buffered without end; its browser
    // reconnects with the last id it has and gets the rest from the table, without a gap.
    if (queue.length >= maxQueue) {
      overflow = true;
      queue.length = 0;
    } else queue.push(c);
    wake?.();
  });
  const onAbort = () => wake?.();
  opts.signal?.addEventListener("abort", onAbort);
  try {
    // Stored changes up to `backlogEnd` went out with the backlog. After it, ids are not in order
    // across console processes (another process's change can reach the bus after a newer local
    // one), so what was sent is remembered by id, never skipped by a high-water mark.
    let backlogEnd = -1;
    const sent = new Set<number>();
    if (opts.lastEventId !== undefined) {
      let last = opts.lastEventId;
      const [bounds] = await ctx.db.select({ lo: min(appEvents.id), hi: max(appEvents.id) }).from(appEvents);
      const hi = bounds?.hi ?? 0;
      if (last < hi && (hi - last > (opts.maxReplay ?? MAX_REPLAY) || (bounds?.lo != null && last < bounds.lo - 1))) {
        // Too far behind (or its next events were pruned): the viewer reloads its list instead.
        yield { id: 0, type: "resync", app: "", reason: "too far behind to replay; reload the list", latest: hi };
        last = hi;
      }
      for (;;) {
        const rows = await ctx.db
          .select()
          .from(appEvents)
          .where(opts.app ? and(gt(appEvents.id, last), eq(appEvents.appName, opts.app)) : gt(appEvents.id, last))
          .orderBy(asc(appEvents.id))
          .limit(500);
        for (const row of rows) {
          last = row.id;
          yield toChange(row);
        }
        if (rows.length < 500) break;
      }
      backlogEnd = last;
    }
    while (!opts.signal?.aborted) {
      if (queue.length === 0 && !overflow) await new Promise<void>((r) => (wake = r));
      wake = null;
      if (overflow) return;
      while (queue.length) {
        const c = queue.shift()!;
        // Id 0 is transient (usage, log lines); stored ids go out once.
        if (c.id > 0) {
          if (c.id <= backlogEnd || sent.has(c.id)) continue;
          sent.add(c.id);
          if (sent.size > 20_000) for (const id of [...sent].slice(0, 10_000)) sent.delete(id);
        }
        yield c;
      }
    }
  } finally {
    unsubscribe();
    opts.signal?.removeEventListener("abort", onAbort);
  }
}
