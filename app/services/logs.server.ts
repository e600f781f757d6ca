// App logs by app name: the last lines, or a live follow, read by the agent of the host that runs
// the app and relayed by the hub of this process. Only that host is asked, and only its answers
// about that app are taken (the hub session checks both).
import { eq } from "drizzle-orm";
import { z } from "zod";
import type { LogLine } from "../../agent/src/contract/reports";
import { AppNameSchema } from "../../agent/src/contract/validation";
import { hosts } from "../../db/schema";
import type { ConsoleContext, LogSink } from "../context.server";
import { requireApp } from "./apps.server";
import { ServiceError } from "./errors";

const tail = (min: number) =>
  z
    .number({ error: "must be a whole number" })
    .int({ error: "must be a whole number" })
    .min(min, { error: `must be between ${min} and 5000` })
    .max(5000, { error: `must be between ${min} and 5000` });

export const AppLogsInput = z.strictObject({ name: AppNameSchema, tail: tail(1).optional() });
/** `tail: 0` follows only new lines. */
export const AppLogFollowInput = z.strictObject({ name: AppNameSchema, tail: tail(0).optional() });

export const DEFAULT_TAIL = 200;
/** How long a tail request waits for the agent. */
export const LOGS_TIMEOUT_MS = 10_000;
/** Lines a follow holds for a slow viewer before it drops the oldest. */
const FOLLOW_BUFFER = 5000;
/** Lines per message of a follow. */
const FOLLOW_BATCH = 1000;

export interface LogBatch {
  lines: LogLine[];
  /** Lines this viewer lost because it read slower than the app wrote (oldest dropped first). */
  dropped?: number;
  /** Set on the last message of a follow that ended on the host (the container stopped). */
  ended?: string;
}

type Ctx = Pick<ConsoleContext, "db" | "dispatcher">;

function offline(host: string, why: string): ServiceError {
  return new ServiceError("PRECONDITION_FAILED", `host offline: ${host} ${why}`);
}

/** Opens a log request to the app's host; throws NOT_FOUND / PRECONDITION_FAILED before anything is sent. */
async function open(ctx: Ctx, name: string, req: { tail: number; follow: boolean }, sink: LogSink): Promise<{ stop: () => void; host: string }> {
  const app = await requireApp(ctx.db, name);
  if (!app.hostId) throw new ServiceError("PRECONDITION_FAILED", `app ${name} is not placed on a host yet, so it has no logs`);
  const [host] = await ctx.db.select({ name: hosts.name, online: hosts.online }).from(hosts).where(eq(hosts.id, app.hostId));
  const label = host?.name ?? app.hostId;
  if (!host?.online) throw offline(label, `is not connected, so the logs of ${name} cannot be read now`);
  const stop = ctx.dispatcher.openLogs?.(app.hostId, { app: name, ...req }, sink) ?? null;
  if (!stop) throw offline(label, "is connected to another console process, not this one");
  return { stop, host: label };
}

function agentError(name: string, error: string): ServiceError {
  if (error.startsWith("host offline")) return new ServiceError("PRECONDITION_FAILED", error);
  return new ServiceError("PRECONDITION_FAILED", `the agent could not read the logs of ${name}: ${error}`);
}

/** The app's last `tail` lines, oldest first. */
export async function readAppLogs(ctx: Ctx, name: string, tailLines = DEFAULT_TAIL, timeoutMs = LOGS_TIMEOUT_MS): Promise<LogLine[]> {
  const lines: LogLine[] = [];
  let settle!: { resolve: (v: LogLine[]) => void; reject: (e: Error) => void };
  const answered = new Promise<LogLine[]>((resolve, reject) => (settle = { resolve, reject }));
  answered.catch(() => {}); // awaited below; an early failure must not count as unhandled
  const { stop, host } = await open(ctx, name, { tail: tailLines, follow: false }, {
    lines: (ls) => void lines.push(...ls),
    end: (error) => (error ? settle.reject(agentError(name, error)) : settle.resolve(lines.slice(-tailLines))),
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ServiceError("GATEWAY_TIMEOUT", `host ${host} did not answer within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
  });
  try {
    return await Promise.race([answered, timeout]);
  } finally {
    clearTimeout(timer);
    stop();
  }
}

/**
 * Follows the app's log: first its last `tail` lines, then live ones, in batches. Ends when the
 * viewer goes away (`signal`; the agent is told to stop reading), when the container's log ends,
 * or with an error when the host goes offline.
 */
export async function* followAppLogs(ctx: Ctx, name: string, tailLines: number, signal?: AbortSignal): AsyncGenerator<LogBatch> {
  let queue: LogLine[] = [];
  let dropped = 0;
  let ended: { error?: string } | null = null;
  let wake: (() => void) | null = null;
  const { stop } = await open(ctx, name, { tail: tailLines, follow: true }, {
    lines(ls) {
      queue.push(...ls);
      if (queue.length > FOLLOW_BUFFER) {
        dropped += queue.length - FOLLOW_BUFFER;
        queue = queue.slice(-FOLLOW_BUFFER);
      }
      wake?.();
    },
    end(error) {
      ended = { error };
      wake?.();
    },
  });
  const onAbort = () => wake?.();
  signal?.addEventListener("abort", onAbort);
  try {
    while (!signal?.aborted) {
      if (!queue.length && !ended) await new Promise<void>((r) => (wake = r));
      wake = null;
      if (queue.length) {
        const lines = queue.splice(0, FOLLOW_BATCH);
        const batch: LogBatch = { lines };
        if (dropped) batch.dropped = dropped;
        dropped = 0;
        yield batch;
        continue;
      }
      const end = ended as { error?: string } | null;
      if (end) {
        if (end.error) throw agentError(name, end.error);
        yield { lines: [], ended: "the container's log stream ended (the container stopped or was replaced)" };
        return;
      }
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    stop();
  }
}
