// Follows Docker's event stream for this host's managed containers (no polling of container
// state) and hands each relevant event on as a small typed record. Reconnects with backoff when
// the stream ends (Docker restarted) and says so, so the caller can resynchronise.
import type Dockerode from "dockerode";
import { errorMessage } from "./errors";

export interface ContainerEvent {
  action: "create" | "start" | "restart" | "die" | "kill" | "stop" | "oom" | "destroy" | "health";
  app: string;
  containerId: string;
  /** A one-off container (`compose run`, our install step), not the app's service container. */
  oneoff: boolean;
  exitCode?: number;
  signal?: string;
  healthy?: boolean;
  /** Docker's event time in ms. */
  time: number;
}

const ACTIONS = new Set(["create", "start", "restart", "die", "kill", "stop", "oom", "destroy"]);

interface RawEvent {
  Type?: string;
  Action?: string;
  status?: string;
  id?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
  time?: number;
  timeNano?: number;
}

/** Maps one decoded Docker event onto a ContainerEvent, or null when it is not ours or not relevant. */
export function parseDockerEvent(raw: RawEvent, hostId: string): ContainerEvent | null {
  if (raw.Type !== "container") return null;
  const attrs = raw.Actor?.Attributes ?? {};
  if (attrs["dcc.managed"] !== "true" || attrs["dcc.host"] !== hostId || !attrs["dcc.app"]) return null;
  const action = raw.Action ?? raw.status ?? "";
  const containerId = raw.Actor?.ID ?? raw.id ?? "";
  const time = raw.timeNano ? Math.round(raw.timeNano / 1e6) : (raw.time ?? 0) * 1000;
  const base = { app: attrs["dcc.app"], containerId, oneoff: attrs["com.docker.compose.oneoff"] === "True", time };
  if (action.startsWith("health_status")) {
    return { ...base, action: "health", healthy: action.endsWith("healthy") && !action.endsWith("unhealthy") };
  }
  if (!ACTIONS.has(action)) return null;
  const event: ContainerEvent = { ...base, action: action as ContainerEvent["action"] };
  if (attrs.exitCode !== undefined && /^-?\d+$/.test(attrs.exitCode)) event.exitCode = Number(attrs.exitCode);
  if (attrs.signal) event.signal = attrs.signal;
  return event;
}

/** Splits a byte stream of concatenated JSON objects (one per line) into objects. */
export class JsonLineSplitter {
  private buffer = "";
  push(chunk: Buffer | string, onObject: (value: unknown) => void): void {
    this.buffer += chunk.toString();
    let newline: number;
    while ((newline = this.buffer.indexOf("\n")) !== -1) {
      const line = this.buffer.slice(0, newline).trim();
      this.buffer = this.buffer.slice(newline + 1);
      if (!line) continue;
      try {
        onObject(JSON.parse(line));
      } catch {
        // a malformed line is skipped; the next one stands on its own
      }
    }
  }
}

export interface EventFollowerOptions {
  docker: Dockerode;
  hostId: string;
  onEvent: (event: ContainerEvent) => void;
  /** Called once the stream is (re)connected: events may have been missed before it. */
  onConnected: () => void;
  log?: (message: string) => void;
}

export class EventFollower {
  private stream: NodeJS.ReadableStream | null = null;
  private abort: AbortController | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = true;
  private backoffMs = 100;

  constructor(private readonly options: EventFollowerOptions) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.abort?.abort();
    this.abort = null;
    const s = this.stream as (NodeJS.ReadableStream & { destroy?: () => void }) | null;
    s?.destroy?.();
    this.stream = null;
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const abort = new AbortController();
    this.abort = abort;
    let stream: NodeJS.ReadableStream;
    try {
      stream = (await this.options.docker.getEvents({
        filters: { type: ["container"], label: ["dcc.managed=true", `dcc.host=${this.options.hostId}`] },
        abortSignal: abort.signal,
      } as Parameters<Dockerode["getEvents"]>[0])) as NodeJS.ReadableStream;
    } catch (err) {
      this.retry(`docker event stream unavailable: ${errorMessage(err)}`);
      return;
    }
    if (this.stopped) {
      (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
      return;
    }
    this.stream = stream;
    this.backoffMs = 100;
    const splitter = new JsonLineSplitter();
    stream.on("data", (chunk: Buffer) =>
      splitter.push(chunk, (value) => {
        const event = parseDockerEvent(value as RawEvent, this.options.hostId);
        if (event) this.options.onEvent(event);
      }),
    );
    let ended = false;
    const onEnd = (why: string) => {
      if (ended) return;
      ended = true;
      if (this.stream === stream) this.stream = null;
      this.retry(why);
    };
    stream.on("end", () => onEnd("docker event stream ended"));
    stream.on("close", () => onEnd("docker event stream closed"));
    stream.on("error", (err: Error) => onEnd(`docker event stream failed: ${err.message}`));
    this.options.onConnected();
  }

  private retry(why: string): void {
    if (this.stopped) return;
    this.options.log?.(`${why}; reconnecting in ${this.backoffMs} ms`);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.connect();
    }, this.backoffMs);
    this.backoffMs = Math.min(this.backoffMs * 2, 5000);
  }
}
