// Container logs for the console: answers `logs` requests (the last lines, or a live follow) with
// `log` messages carrying the request id, batched so a chatty container costs a few messages a
// second, and ends a follow when the console says `logs-stop` or the socket drops, so no Docker
// log stream outlives its viewer.
import type { AgentMessage, ConsoleMessage } from "./contract/protocol";
import type { LogLine } from "./contract/reports";
import type { Logger } from "./log";

type LogsRequest = Extract<ConsoleMessage, { type: "logs" }>;

/** The slice of the ops layer's AppManager the relay uses. */
export interface LogSource {
  /** Streams the app's last `tail` lines, then (with follow) live ones; `onEnd` once; returns a stop function. */
  streamLogs(app: string, req: { tail: number; follow: boolean }, onLine: (line: LogLine) => void, onEnd: (error?: Error) => void): () => void;
}

export interface LogRelayOptions {
  /** Resolves to the app manager once it is up, or null when there is none. */
  source: () => Promise<LogSource | null>;
  unavailable: () => string;
  /** Sends when connected; false when the message was dropped. */
  send: (msg: AgentMessage) => boolean;
  log: Logger;
  /** Most follows at once on this host. */
  maxFollows?: number;
  /** A follow's lines are held this long to go out together. */
  batchMs?: number;
}

/** Per message: the protocol allows 500 lines; the byte budget keeps a message far below MAX_MESSAGE_BYTES. */
const BATCH_LINES = 500;
const BATCH_BYTES = 256 * 1024;

interface Follow {
  app: string;
  stop: () => void;
  /** Why it is being stopped (set before stop() so the end is logged with it). */
  reason: string | null;
}

export class LogRelay {
  private readonly follows = new Map<string, Follow>();

  constructor(private readonly o: LogRelayOptions) {}

  /** Follows running now. */
  get active(): number {
    return this.follows.size;
  }

  handle(req: LogsRequest): void {
    void this.start(req).catch((e) => this.finish(req.requestId, [], (e as Error).message));
  }

  /** Ends one follow (the console's viewer went away). */
  stop(requestId: string, reason = "stopped by the console"): void {
    const f = this.follows.get(requestId);
    if (!f || f.reason) return;
    f.reason = reason;
    f.stop();
  }

  /** Ends every follow (the socket dropped, or the agent is stopping): nobody would read them. */
  stopAll(reason: string): void {
    for (const id of [...this.follows.keys()]) this.stop(id, reason);
  }

  private async start(req: LogsRequest): Promise<void> {
    const { requestId, app, tail } = req;
    if (this.follows.has(requestId)) return;
    if (req.follow && this.follows.size >= (this.o.maxFollows ?? 64)) {
      return this.finish(requestId, [], `too many log follows on this host (${this.o.maxFollows ?? 64}); close a viewer`);
    }
    // Reserved at once, so a logs-stop that arrives while the manager starts is not lost.
    const follow: Follow | null = req.follow ? { app, stop: () => {}, reason: null } : null;
    if (follow) this.follows.set(requestId, follow);
    const source = await this.o.source();
    if (!source) {
      this.follows.delete(requestId);
      return this.finish(requestId, [], this.o.unavailable());
    }
    if (follow?.reason) {
      this.follows.delete(requestId);
      return;
    }
    if (!follow) {
      const lines: LogLine[] = [];
      source.streamLogs(app, { tail, follow: false }, (l) => lines.push(l), (err) => this.finish(requestId, lines, err?.message));
      return;
    }

    const batch = new Batch((lines) => this.o.send({ type: "log", requestId, lines }), this.o.batchMs ?? 50);
    this.o.log("info", "log follow started", { requestId, app, tail, follows: this.follows.size });
    follow.stop = source.streamLogs(
      app,
      { tail, follow: true },
      (line) => {
        // A console that cannot be reached any more gets no more lines: stop reading them.
        if (!follow.reason && !batch.push(line)) this.stop(requestId, "the console is not connected");
      },
      (err) => {
        this.follows.delete(requestId);
        batch.close();
        const reason = follow.reason ?? (err ? err.message : "the container's log stream ended");
        this.o.log(err && !follow.reason ? "warn" : "info", "log follow ended", { requestId, app, reason, follows: this.follows.size });
        // Ended on the agent's side: tell the console. Stopped by it or by a drop: nobody listens.
        if (!follow.reason) {
          batch.flush();
          this.o.send({ type: "log", requestId, lines: [], done: true, ...(err ? { error: err.message.slice(0, 1000) } : {}) });
        }
      },
    );
    if (follow.reason) follow.stop();
  }

  /** Sends a complete answer in as many messages as it takes; the last carries `done`. */
  private finish(requestId: string, lines: LogLine[], error?: string): void {
    const chunks = chunk(lines);
    chunks.forEach((part, i) => {
      const last = i === chunks.length - 1;
      this.o.send({ type: "log", requestId, lines: part, ...(last ? { done: true, ...(error ? { error: error.slice(0, 1000) } : {}) } : {}) });
    });
  }
}

function lineBytes(l: LogLine): number {
  return Buffer.byteLength(JSON.stringify(l));
}

/** Splits lines into message-sized parts (always at least one, possibly empty). */
export function chunk(lines: LogLine[]): LogLine[][] {
  const out: LogLine[][] = [];
  let part: LogLine[] = [];
  let bytes = 0;
  for (const l of lines) {
    const b = lineBytes(l);
    if (part.length && (part.length >= BATCH_LINES || bytes + b > BATCH_BYTES)) {
      out.push(part);
      part = [];
      bytes = 0;
    }
    part.push(l);
    bytes += b;
  }
  out.push(part);
  return out;
}

/** Holds lines for up to `ms`, or until a message is full, then sends them together. */
export class Batch {
  private lines: LogLine[] = [];
  private bytes = 0;
  private timer: NodeJS.Timeout | null = null;
  private ok = true;
  private closed = false;

  constructor(
    private readonly send: (lines: LogLine[]) => boolean,
    private readonly ms: number,
  ) {}

  /** False once a send failed (the console is gone). */
  push(line: LogLine): boolean {
    if (this.closed) return false;
    const b = lineBytes(line);
    if (this.lines.length && (this.lines.length >= BATCH_LINES || this.bytes + b > BATCH_BYTES)) this.flush();
    this.lines.push(line);
    this.bytes += b;
    this.timer ??= setTimeout(() => this.flush(), this.ms);
    return this.ok;
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!this.lines.length) return;
    const lines = this.lines;
    this.lines = [];
    this.bytes = 0;
    if (!this.send(lines)) this.ok = false;
  }

  /** Stops the timer; what is held stays until an explicit flush. */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.closed = true;
  }
}
