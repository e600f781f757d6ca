import { createServer as createHttp } from "node:http";
import { createServer, type AddressInfo, type Server } from "node:net";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer as createHttps } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ProbeScheduler, probePort } from "./probe";

/** A self-signed certificate made by openssl, as an app serving HTTPS on its port would have. */
function selfSigned(): { key: Buffer; cert: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), "dcc-probe-tls-"));
  try {
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "k.pem"), "-out", join(dir, "c.pem"), "-days", "1", "-subj", "/CN=localhost"], { stdio: "ignore" });
    return { key: readFileSync(join(dir, "k.pem")), cert: readFileSync(join(dir, "c.pem")) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

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

  it("asks for the app's health path", async () => {
    const paths: string[] = [];
    const server = createHttp((req, res) => {
      paths.push(req.url ?? "");
      res.writeHead(req.url === "/healthz?deep=1" ? 200 : 500).end();
    });
    const port = await listen(server);
    expect(await probePort(port, { path: "/healthz?deep=1" })).toMatchObject({ reachable: true, httpStatus: 200 });
    expect(paths).toEqual(["/healthz?deep=1"]);
    server.close();
  });

  it("counts an app serving HTTPS with a self-signed certificate as answering", async () => {
    const server = createHttps(selfSigned(), (_req, res) => res.writeHead(200).end("ok"));
    const port = await new Promise<number>((r) => server.listen(0, "127.0.0.1", () => r((server.address() as AddressInfo).port)));
    expect(await probePort(port)).toMatchObject({ tcp: true, reachable: true, httpStatus: 200 });
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
