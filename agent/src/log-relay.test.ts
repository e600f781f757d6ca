import { afterEach, describe, expect, it, vi } from "vitest";
import type { AgentMessage } from "./contract/protocol";
import { MAX_MESSAGE_BYTES } from "./contract/protocol";
import type { LogLine } from "./contract/reports";
import { LogRelay, chunk, type LogSource } from "./log-relay";

type LogMsg = Extract<AgentMessage, { type: "log" }>;

const line = (n: number, text = `line ${n}`): LogLine => ({ app: "web", stream: "stdout", line: text, at: new Date(1_700_000_000_000 + n).toISOString() });

/** A fake app manager: records what was asked and lets the test push lines and end streams. */
class FakeSource implements LogSource {
  readonly streams: { app: string; req: { tail: number; follow: boolean }; onLine: (l: LogLine) => void; onEnd: (e?: Error) => void; stopped: boolean }[] = [];
  tail: LogLine[] = [];
  error: Error | null = null;

  streamLogs(app: string, req: { tail: number; follow: boolean }, onLine: (l: LogLine) => void, onEnd: (e?: Error) => void): () => void {
    const s = { app, req, onLine, onEnd, stopped: false };
    this.streams.push(s);
    queueMicrotask(() => {
      if (this.error) return onEnd(this.error);
      for (const l of this.tail.slice(-req.tail)) onLine(l);
      if (!req.follow) onEnd();
    });
    // Like streamLogs: aborting ends the stream, which reports its end.
    return () => {
      if (s.stopped) return;
      s.stopped = true;
      setTimeout(() => onEnd(), 1);
    };
  }
}

function setup(over: { connected?: () => boolean; maxFollows?: number } = {}) {
  const source = new FakeSource();
  const sent: LogMsg[] = [];
  const logs: { msg: string; fields?: Record<string, unknown> }[] = [];
  const relay = new LogRelay({
    source: async () => source,
    unavailable: () => "Docker is not reachable on this host",
    send: (m) => {
      if (over.connected && !over.connected()) return false;
      sent.push(m as LogMsg);
      return true;
    },
    log: (_level, msg, fields) => logs.push({ msg, fields }),
    maxFollows: over.maxFollows,
    batchMs: 50,
  });
  return { source, sent, logs, relay };
}

const flush = () => new Promise((r) => setTimeout(r, 0));

afterEach(() => {
  vi.useRealTimers();
});

describe("log relay: tails", () => {
  it("answers a tail in message-sized parts, the last marked done", async () => {
    const { source, sent, relay } = setup();
    source.tail = Array.from({ length: 1200 }, (_, i) => line(i));
    relay.handle({ type: "logs", requestId: "r1", app: "web", tail: 1200 });
    await vi.waitFor(() => expect(sent.at(-1)?.done).toBe(true));
    expect(sent.map((m) => m.lines.length)).toEqual([500, 500, 200]);
    expect(sent.every((m) => m.requestId === "r1")).toBe(true);
    expect(sent.filter((m) => m.done)).toHaveLength(1);
    expect(sent.flatMap((m) => m.lines).map((l) => l.line)).toEqual(source.tail.map((l) => l.line));
    expect(source.streams[0]!.req).toEqual({ tail: 1200, follow: false });
  });

  it("keeps each message far below the websocket limit even with long lines", () => {
    const long = Array.from({ length: 300 }, (_, i) => line(i, "x".repeat(16_000)));
    const parts = chunk(long);
    expect(parts.length).toBeGreaterThan(1);
    for (const p of parts) expect(Buffer.byteLength(JSON.stringify({ type: "log", requestId: "r", lines: p }))).toBeLessThan(MAX_MESSAGE_BYTES / 2);
    expect(parts.flat()).toHaveLength(300);
  });

  it("reports the agent's error as the answer", async () => {
    const { source, sent, relay } = setup();
    source.error = new Error("app web has no container");
    relay.handle({ type: "logs", requestId: "r2", app: "web", tail: 10 });
    await vi.waitFor(() => expect(sent).toHaveLength(1));
    expect(sent[0]).toEqual({ type: "log", requestId: "r2", lines: [], done: true, error: "app web has no container" });
  });

  it("says why when there is no app manager", async () => {
    const sent: LogMsg[] = [];
    const relay = new LogRelay({ source: async () => null, unavailable: () => "Docker is not reachable on this host", send: (m) => (sent.push(m as LogMsg), true), log: () => {} });
    relay.handle({ type: "logs", requestId: "r3", app: "web", tail: 10, follow: true });
    await vi.waitFor(() => expect(sent).toHaveLength(1));
    expect(sent[0]).toMatchObject({ done: true, error: "Docker is not reachable on this host" });
    expect(relay.active).toBe(0);
  });
});

describe("log relay: follows", () => {
  it("batches lines that arrive together into one message", async () => {
    const { source, sent, relay } = setup();
    relay.handle({ type: "logs", requestId: "f1", app: "web", tail: 0, follow: true });
    await flush();
    const s = source.streams[0]!;
    for (let i = 0; i < 120; i++) s.onLine(line(i));
    expect(sent).toHaveLength(0);
    await vi.waitFor(() => expect(sent).toHaveLength(1));
    expect(sent[0]!.lines).toHaveLength(120);
    expect(sent[0]!.done).toBeUndefined();
    // A full message goes at once, without waiting for the timer.
    for (let i = 0; i < 501; i++) s.onLine(line(i));
    expect(sent).toHaveLength(2);
    expect(sent[1]!.lines).toHaveLength(500);
    expect(relay.active).toBe(1);
  });

  it("stops reading when the console says logs-stop, and sends nothing more", async () => {
    const { source, sent, logs, relay } = setup();
    relay.handle({ type: "logs", requestId: "f2", app: "web", tail: 5, follow: true });
    await flush();
    expect(logs.map((l) => l.msg)).toContain("log follow started");
    relay.stop("f2");
    expect(source.streams[0]!.stopped).toBe(true);
    await vi.waitFor(() => expect(logs.find((l) => l.msg === "log follow ended")).toBeTruthy());
    expect(logs.find((l) => l.msg === "log follow ended")!.fields).toMatchObject({ requestId: "f2", reason: "stopped by the console", follows: 0 });
    expect(relay.active).toBe(0);
    expect(sent.some((m) => m.done)).toBe(false);
  });

  it("stops every follow when the socket drops", async () => {
    const { source, logs, relay } = setup();
    relay.handle({ type: "logs", requestId: "a", app: "web", tail: 0, follow: true });
    relay.handle({ type: "logs", requestId: "b", app: "web", tail: 0, follow: true });
    await flush();
    expect(relay.active).toBe(2);
    relay.stopAll("disconnected from the console");
    expect(source.streams.every((s) => s.stopped)).toBe(true);
    await vi.waitFor(() => expect(relay.active).toBe(0));
    expect(logs.filter((l) => l.msg === "log follow ended").map((l) => l.fields!.reason)).toEqual(["disconnected from the console", "disconnected from the console"]);
  });

  it("stops a follow whose lines cannot be sent (console gone)", async () => {
    let up = true;
    const { source, relay } = setup({ connected: () => up });
    relay.handle({ type: "logs", requestId: "c", app: "web", tail: 0, follow: true });
    await flush();
    up = false;
    for (let i = 0; i < 500; i++) source.streams[0]!.onLine(line(i));
    source.streams[0]!.onLine(line(501));
    expect(source.streams[0]!.stopped).toBe(true);
  });

  it("tells the console when the container's log ends", async () => {
    const { source, sent, relay } = setup();
    relay.handle({ type: "logs", requestId: "d", app: "web", tail: 0, follow: true });
    await flush();
    source.streams[0]!.onLine(line(1));
    source.streams[0]!.onEnd();
    expect(sent.at(-2)!.lines.map((l) => l.line)).toEqual(["line 1"]);
    expect(sent.at(-1)).toEqual({ type: "log", requestId: "d", lines: [], done: true });
    expect(relay.active).toBe(0);
  });

  it("refuses more follows than allowed", async () => {
    const { sent, relay } = setup({ maxFollows: 1 });
    relay.handle({ type: "logs", requestId: "e1", app: "web", tail: 0, follow: true });
    relay.handle({ type: "logs", requestId: "e2", app: "web", tail: 0, follow: true });
    await flush();
    expect(sent).toEqual([expect.objectContaining({ requestId: "e2", done: true, error: expect.stringMatching(/too many log follows/) })]);
    expect(relay.active).toBe(1);
  });

  it("a stop that arrives while the app manager starts means the stream is never opened", async () => {
    const { source, relay } = setup();
    relay.handle({ type: "logs", requestId: "g", app: "web", tail: 0, follow: true });
    relay.stop("g");
    await flush();
    expect(source.streams).toHaveLength(0);
    expect(relay.active).toBe(0);
  });
});
