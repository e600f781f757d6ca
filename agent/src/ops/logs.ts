// Container logs by app: the last N lines and, when asked, the live follow. Docker multiplexes
// stdout and stderr into 8-byte-header frames when the container has no TTY (ours never do).
import type Dockerode from "dockerode";
import type { LogLine } from "../contract/reports";

type StreamName = "stdout" | "stderr";
const LINE_MAX = 16_000;

/** Splits Docker's multiplexed log frames; falls back to raw stdout when the data is not framed. */
export class LogDemuxer {
  private buffer: Buffer = Buffer.alloc(0);
  private raw = false;

  push(chunk: Buffer, onData: (stream: StreamName, data: Buffer) => void): void {
    if (this.raw) {
      onData("stdout", chunk);
      return;
    }
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    while (this.buffer.length >= 8) {
      const type = this.buffer[0];
      if ((type !== 1 && type !== 2 && type !== 0) || this.buffer[1] !== 0 || this.buffer[2] !== 0 || this.buffer[3] !== 0) {
        this.raw = true;
        onData("stdout", this.buffer);
        this.buffer = Buffer.alloc(0);
        return;
      }
      const length = this.buffer.readUInt32BE(4);
      if (this.buffer.length < 8 + length) return;
      onData(type === 2 ? "stderr" : "stdout", this.buffer.subarray(8, 8 + length));
      this.buffer = this.buffer.subarray(8 + length);
    }
  }
}

/** Joins chunks per stream into lines; `flush` hands on what is left at the end. */
export class LineAssembler {
  private partial: Record<StreamName, string> = { stdout: "", stderr: "" };

  push(stream: StreamName, data: Buffer | string, onLine: (stream: StreamName, line: string) => void): void {
    const lines = (this.partial[stream] + data.toString()).split("\n");
    this.partial[stream] = lines.pop() ?? "";
    for (const line of lines) onLine(stream, line.replace(/\r$/, ""));
  }

  flush(onLine: (stream: StreamName, line: string) => void): void {
    for (const stream of ["stdout", "stderr"] as const) {
      if (this.partial[stream]) onLine(stream, this.partial[stream]);
      this.partial[stream] = "";
    }
  }
}

/** Docker prefixes each line with an RFC 3339 nano timestamp when asked for timestamps. */
export function splitTimestamp(line: string): { at: string; text: string } {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) (.*)$/s.exec(line);
  if (!m) return { at: new Date().toISOString(), text: line };
  const at = new Date(m[1]!);
  return { at: Number.isNaN(at.getTime()) ? new Date().toISOString() : at.toISOString(), text: m[2]! };
}

export interface LogRequest {
  tail: number;
  follow: boolean;
}

/**
 * Streams the container's log lines to `onLine`. Resolves when the logs end (at once without
 * follow; when the container goes away with follow) or `signal` aborts.
 */
export async function streamLogs(
  docker: Dockerode,
  containerId: string,
  app: string,
  req: LogRequest,
  onLine: (line: LogLine) => void,
  signal?: AbortSignal,
): Promise<void> {
  const demux = new LogDemuxer();
  const lines = new LineAssembler();
  const emit = (stream: StreamName, raw: string) => {
    const { at, text } = splitTimestamp(raw);
    onLine({ app, stream, line: text.length > LINE_MAX ? text.slice(0, LINE_MAX) : text, at });
  };
  const feed = (chunk: Buffer) => demux.push(chunk, (stream, data) => lines.push(stream, data, emit));
  const container = docker.getContainer(containerId);
  const tail = Math.max(0, Math.min(10_000, Math.floor(req.tail)));
  if (!req.follow) {
    const data = (await container.logs({ stdout: true, stderr: true, timestamps: true, tail, follow: false })) as unknown as Buffer;
    feed(Buffer.isBuffer(data) ? data : Buffer.from(String(data)));
    lines.flush(emit);
    return;
  }
  const stream = (await container.logs({ stdout: true, stderr: true, timestamps: true, tail, follow: true, abortSignal: signal } as Parameters<Dockerode.Container["logs"]>[0] & { follow: true })) as NodeJS.ReadableStream & { destroy?: () => void };
  await new Promise<void>((resolve) => {
    const done = () => {
      lines.flush(emit);
      resolve();
    };
    signal?.addEventListener("abort", () => {
      stream.destroy?.();
      done();
    }, { once: true });
    stream.on("data", (chunk: Buffer) => feed(chunk));
    stream.on("end", done);
    stream.on("close", done);
    stream.on("error", done);
  });
}
