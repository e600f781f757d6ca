// A TCP proxy on loopback that a test steers into the faults a network really has: passing
// traffic, refusing connections (the far end is down), holding new connections unanswered,
// trickling bytes (a slow link), black-holing a live link (open sockets, no bytes either way,
// no FIN or RST) and cutting every connection at once.
import { createServer, connect, type Server, type Socket } from "node:net";

export type ProxyMode = "pass" | "refuse" | "hold" | "blackhole";

interface Pair {
  client: Socket;
  upstream: Socket | null;
}

export class FaultProxy {
  private server!: Server;
  private readonly pairs = new Set<Pair>();
  private readonly held: Socket[] = [];
  private mode: ProxyMode = "pass";
  /** Bytes per second from the target back to the client; 0 = unlimited. */
  private rate = 0;
  port = 0;
  /** Connections accepted so far (any mode). */
  accepted = 0;

  constructor(private readonly targetPort: number, private readonly targetHost = "127.0.0.1") {}

  async start(port = 0): Promise<void> {
    this.server = createServer((client) => this.accept(client));
    await new Promise<void>((r, j) => {
      this.server.once("error", j);
      this.server.listen(port, "127.0.0.1", () => r());
    });
    this.port = (this.server.address() as { port: number }).port;
  }

  /** Connections waiting at the proxy while it holds (a client stuck in connect/handshake). */
  get holding(): number {
    return this.held.length;
  }

  /** Live relayed connections. */
  get live(): number {
    return this.pairs.size;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Relay everything again; connections held so far are relayed now. */
  pass(): void {
    this.mode = "pass";
    for (const p of this.pairs) this.flow(p, true);
    for (const s of this.held.splice(0)) this.relay(s);
  }

  /** New connections are closed at once (as if nothing listened); live ones are cut. */
  refuse(): void {
    this.mode = "refuse";
    this.cut();
    for (const s of this.held.splice(0)) s.destroy();
  }

  /** New connections are accepted and left unanswered; live ones keep flowing. */
  hold(): void {
    this.mode = "hold";
  }

  /** Live and new connections stay open but no byte passes either way (a silent link). */
  blackhole(): void {
    this.mode = "blackhole";
    for (const p of this.pairs) this.flow(p, false);
  }

  /** Limits the target → client direction to `bytesPerSecond` (0: unlimited) for new and live connections. */
  throttle(bytesPerSecond: number): void {
    this.rate = bytesPerSecond;
  }

  /** Destroys every relayed connection now (both ends see the link die); the mode stays. */
  cut(): void {
    for (const p of this.pairs) {
      p.client.destroy();
      p.upstream?.destroy();
    }
    this.pairs.clear();
  }

  async close(): Promise<void> {
    this.cut();
    for (const s of this.held.splice(0)) s.destroy();
    await new Promise((r) => this.server.close(r));
  }

  private accept(client: Socket): void {
    this.accepted++;
    client.on("error", () => client.destroy());
    if (this.mode === "refuse") return void client.destroy();
    if (this.mode === "hold") return void this.held.push(client);
    this.relay(client);
  }

  private relay(client: Socket): void {
    const upstream = connect(this.targetPort, this.targetHost);
    const pair: Pair = { client, upstream };
    this.pairs.add(pair);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    // A black hole pauses both sockets (no 'data' while paused), so bytes wait and none are lost.
    client.on("data", (d) => upstream.write(d));
    upstream.on("data", (d: Buffer) => {
      if (this.rate <= 0) return void client.write(d);
      // Trickle: pause the upstream and hand the bytes over in rate-sized slices, one per 100 ms.
      upstream.pause();
      const slice = Math.max(1, Math.floor(this.rate / 10));
      let off = 0;
      const tick = () => {
        if (client.destroyed) return;
        if (this.mode === "blackhole") return void setTimeout(tick, 100);
        const step = this.rate > 0 ? slice : d.length - off;
        client.write(d.subarray(off, off + step));
        off += step;
        if (off < d.length) setTimeout(tick, 100);
        else upstream.resume();
      };
      tick();
    });
    client.on("end", () => upstream.end());
    upstream.on("end", () => client.end());
    if (this.mode === "blackhole") this.flow(pair, false);
  }

  private flow(p: Pair, on: boolean): void {
    // Stop reading in a black hole, so the kernel buffers fill and nothing is acknowledged upward.
    if (on) {
      p.client.resume();
      p.upstream?.resume();
    } else {
      p.client.pause();
      p.upstream?.pause();
    }
  }
}
