// A webhook receiver on loopback that records every POST (path, headers, raw body). `down()` stops
// listening (senders get connection refused); `up()` listens again on the same port.
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { Socket } from "node:net";

export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

export class WebhookReceiver {
  readonly received: Received[] = [];
  port = 0;
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async up(): Promise<this> {
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        this.received.push({ path: req.url ?? "", headers: req.headers, body, at: Date.now() });
        res.writeHead(204).end();
      });
    });
    server.on("connection", (s) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
    await new Promise<void>((r) => server.listen(this.port, "127.0.0.1", () => r()));
    this.port = (server.address() as { port: number }).port;
    this.server = server;
    return this;
  }

  async down(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    for (const sock of this.sockets) sock.destroy();
    await new Promise((r) => s.close(r));
  }

  /** Parsed JSON bodies received on `path`. */
  json(path: string): Record<string, unknown>[] {
    return this.received.filter((r) => r.path === path).map((r) => JSON.parse(r.body) as Record<string, unknown>);
  }
}
