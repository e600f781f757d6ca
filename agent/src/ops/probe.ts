// Port probes: a TCP connect to 127.0.0.1:<port>, then an HTTP GET on the same connection. Only an
// HTTP answer counts as reachable: Docker's userland proxy accepts a connection on a published
// port even while nothing in the container listens yet.
import { connect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";

export interface ProbeResult {
  tcp: boolean;
  reachable: boolean;
  /** HTTP status code when the app answered. */
  httpStatus?: number;
  error?: string;
}

export type Probe = (port: number, path?: string) => Promise<ProbeResult>;

/**
 * Plain HTTP first; an app that accepted the connection but gave no HTTP answer is asked again over
 * TLS (an app serving HTTPS with a self-signed certificate answers there: the certificate is not
 * checked, only that it speaks HTTP behind it). `path` is the app's health path (default `/`).
 */
export async function probePort(port: number, { host = "127.0.0.1", timeoutMs = 2000, path = "/" } = {}): Promise<ProbeResult> {
  const plain = await probeOnce(port, host, timeoutMs, path, false);
  if (plain.reachable || !plain.tcp) return plain;
  const tls = await probeOnce(port, host, timeoutMs, path, true);
  return tls.reachable ? tls : plain;
}

function probeOnce(port: number, host: string, timeoutMs: number, path: string, secure: boolean): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let tcp = false;
    let settled = false;
    let received = "";
    const socket: Socket = secure ? tlsConnect({ host, port, rejectUnauthorized: false, servername: undefined }) : connect({ host, port });
    const finish = (result: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ tcp, reachable: false, error: tcp ? "no HTTP answer in time" : "connect timed out" }), timeoutMs);
    socket.setNoDelay(true);
    socket.once(secure ? "secureConnect" : "connect", () => {
      tcp = true;
      socket.write(`GET ${path} HTTP/1.0\r\nHost: ${host}:${port}\r\nUser-Agent: dcc-agent-probe\r\nConnection: close\r\n\r\n`);
    });
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("latin1");
      const line = /^HTTP\/\d(?:\.\d)? (\d{3})/.exec(received);
      if (line) finish({ tcp, reachable: true, httpStatus: Number(line[1]) });
      else if (received.length >= 12 || received.includes("\n")) finish({ tcp, reachable: false, error: "answered, but not HTTP" });
    });
    socket.once("error", (err: NodeJS.ErrnoException) => finish({ tcp, reachable: false, error: err.code ?? err.message }));
    socket.once("close", () => finish({ tcp, reachable: false, error: tcp ? "connection closed without an answer" : "connection closed" }));
  });
}

export const PROBE_FAST_MS = 250;
export const PROBE_SLOW_MS = 5000;
/**
 * For the first PROBE_BURST_FOR_MS after a container starts, probes come every PROBE_BURST_MS: most
 * apps answer within moments of their start, and a 250 ms pace alone adds 125 ms to a deploy on
 * average. A loopback connect costs next to nothing; a slow starter falls back to the fast pace.
 */
export const PROBE_BURST_MS = 15;
export const PROBE_BURST_FOR_MS = 3000;

/**
 * Probes each app on its own timer: every PROBE_FAST_MS while it starts, PROBE_SLOW_MS once it
 * runs. `mode` is asked before each probe, so a status change changes the pace at once.
 */
export class ProbeScheduler {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly inFlight = new Set<string>();
  private readonly burstUntil = new Map<string, number>();
  private active = true;

  constructor(
    private readonly options: {
      probe: Probe;
      port: (app: string) => number | undefined;
      /** The app's health path (default `/`). */
      path?: (app: string) => string | undefined;
      mode: (app: string) => "fast" | "slow" | null;
      onResult: (app: string, result: ProbeResult) => void;
      fastMs?: number;
      slowMs?: number;
      burstMs?: number;
      burstForMs?: number;
    },
  ) {}

  /**
   * (Re)arms the app's probe; `immediately` probes now (a container just started) and, with
   * `burst`, starts the quick pace of the first seconds.
   */
  schedule(app: string, immediately = false, burst = immediately): void {
    if (!this.active) return;
    const mode = this.options.mode(app);
    const existing = this.timers.get(app);
    if (existing) clearTimeout(existing);
    this.timers.delete(app);
    if (!mode) {
      this.burstUntil.delete(app);
      return;
    }
    if (immediately && burst) this.burstUntil.set(app, Date.now() + (this.options.burstForMs ?? PROBE_BURST_FOR_MS));
    const quick = mode === "fast" && Date.now() < (this.burstUntil.get(app) ?? 0);
    const delay = immediately ? 0 : mode === "slow" ? (this.options.slowMs ?? PROBE_SLOW_MS) : quick ? (this.options.burstMs ?? PROBE_BURST_MS) : (this.options.fastMs ?? PROBE_FAST_MS);
    const timer = setTimeout(() => void this.run(app), delay);
    timer.unref?.();
    this.timers.set(app, timer);
  }

  cancel(app: string): void {
    const t = this.timers.get(app);
    if (t) clearTimeout(t);
    this.timers.delete(app);
    this.burstUntil.delete(app);
  }

  /** Probing resumes after stopAll(). */
  resume(): void {
    this.active = true;
  }

  stopAll(): void {
    this.active = false;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  private async run(app: string): Promise<void> {
    this.timers.delete(app);
    if (this.inFlight.has(app)) return;
    const port = this.options.port(app);
    if (port === undefined || !this.options.mode(app)) return;
    this.inFlight.add(app);
    try {
      const result = await this.options.probe(port, this.options.path?.(app));
      this.options.onResult(app, result);
    } finally {
      this.inFlight.delete(app);
    }
    if (!this.timers.has(app)) this.schedule(app);
  }
}
