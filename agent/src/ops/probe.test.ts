import { createServer as createHttp } from "node:http";
import { createServer, type AddressInfo, type Server } from "node:net";
import { ProbeScheduler, probePort } from "./probe";

const listen = (s: Server) => new Promise<number>((r) => s.listen(0, "127.0.0.1", () => r((s.address() as AddressInfo).port)));

describe("probePort", () => {
  it("is reachable when HTTP answers (any status)", async () => {
    const server = createHttp((_req, res) => res.writeHead(404).end("nope"));
    const port = await listen(server);
    expect(await probePort(port)).toMatchObject({ tcp: true, reachable: true, httpStatus: 404 });
    server.close();
  });

  it("is not reachable when a connection is accepted but closed without an answer (docker-proxy)", async () => {
    const server = createServer((socket) => socket.destroy());
    const port = await listen(server);
    expect(await probePort(port)).toMatchObject({ tcp: true, reachable: false });
    server.close();
  });

  it("is not reachable on a closed port", async () => {
    const server = createServer();
    const port = await listen(server);
    server.close();
    await new Promise((r) => setTimeout(r, 20));
    expect(await probePort(port)).toMatchObject({ tcp: false, reachable: false });
  });
});

describe("ProbeScheduler", () => {
  it("probes in a burst right after a start, then at the fast pace, then slowly once reachable", async () => {
    const at: number[] = [];
    let reachable = false;
    let mode: "fast" | "slow" = "fast";
    const t0 = Date.now();
    const s = new ProbeScheduler({
      probe: async () => {
        at.push(Date.now() - t0);
        return { tcp: reachable, reachable };
      },
      port: () => 1234,
      mode: () => mode,
      onResult: (_app, r) => {
        if (r.reachable) mode = "slow";
      },
      burstMs: 10,
      burstForMs: 200,
      fastMs: 150,
      slowMs: 10_000,
    });
    s.schedule("a", true);
    await new Promise((r) => setTimeout(r, 500));
    const inBurst = at.filter((t) => t < 200).length;
    const after = at.filter((t) => t >= 200).length;
    expect(inBurst).toBeGreaterThanOrEqual(8); // every ~10 ms (timers are coarse under load)
    expect(after).toBeLessThanOrEqual(3); // then every 150 ms
    reachable = true;
    await new Promise((r) => setTimeout(r, 200));
    const n = at.length;
    await new Promise((r) => setTimeout(r, 300));
    expect(at.length).toBe(n); // reachable: the slow pace
    s.stopAll();
  });
});
