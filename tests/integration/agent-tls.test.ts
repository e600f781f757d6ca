// The agent behind a TLS-terminating proxy: wss:// with a CA file it is given works; without it
// the certificate is refused; plain ws:// to a non-loopback address is refused before dialling.
import { execFile } from "node:child_process";
import { mkdtemp, readFile } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer, type Server } from "node:tls";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startConsole, type RunningConsole } from "../support/console";
import { freePort } from "../support/net";
import { executions, startAgent, waitFor, type RunningAgent } from "./agents";

let c: RunningConsole;
let proxy: Server;
let proxyPort: number;
let certFile: string;
const sockets = new Set<Socket>();
const agents: RunningAgent[] = [];

beforeAll(async () => {
  c = await startConsole();
  const dir = await mkdtemp(join(tmpdir(), "dcc-tls-"));
  certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  await promisify(execFile)("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", keyFile, "-out", certFile, "-days", "1", "-subj", "/CN=localhost",
    "-addext", "subjectAltName=DNS:localhost",
  ]);
  proxyPort = await freePort();
  proxy = createServer({ key: await readFile(keyFile), cert: await readFile(certFile) }, (tlsSocket) => {
    const upstream = connect(c.port, "127.0.0.1");
    sockets.add(tlsSocket).add(upstream);
    tlsSocket.pipe(upstream).pipe(tlsSocket);
    const drop = () => (tlsSocket.destroy(), upstream.destroy());
    tlsSocket.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
  });
  await new Promise<void>((r) => proxy.listen(proxyPort, "127.0.0.1", () => r()));
});
afterAll(async () => {
  for (const a of agents) await a.stop(true);
  for (const s of sockets) s.destroy();
  await new Promise((r) => proxy?.close(r));
  await c?.dispose();
});

async function token() {
  return (await c.mutate<{ token: string }>("hosts.createEnrollment", {})).body.result!.data.token;
}

describe("agent over TLS", () => {
  it("refuses the proxy's certificate without the CA file, and enrols nothing", async () => {
    const a = await startAgent({ consoleUrl: `https://localhost:${proxyPort}`, token: await token() });
    agents.push(a);
    const err = await a.waitForLog("connection error");
    expect(String(err.error)).toMatch(/self-signed|self signed|unable to verify/i);
    await a.stop();
    const hosts = await c.query<{ items: unknown[] }>("hosts.list");
    expect(hosts.body.result!.data.items).toHaveLength(0);
  });

  it("dials wss:// through a TLS-terminating proxy with --ca-file and runs a command", async () => {
    const a = await startAgent({ consoleUrl: `https://localhost:${proxyPort}`, token: await token(), args: ["--ca-file", certFile] });
    agents.push(a);
    const hostId = String((await a.waitForLog("enrolled")).hostId);
    await a.waitForLog("connected");
    expect(a.find("connecting")[0].url).toBe(`wss://localhost:${proxyPort}/agent`);
    const id = (await c.mutate<{ commandId: string }>("hosts.ping", { id: hostId })).body.result!.data.commandId;
    await waitFor("ping over TLS", async () => {
      const r = await c.db().execute({ sql: "SELECT state FROM commands WHERE id = ?", args: [id] });
      return r.rows[0]?.state === "done";
    });
    expect(executions(a, id)).toHaveLength(1);
  });

  it("refuses plain ws:// to a non-loopback console unless explicitly allowed", async () => {
    const a = await startAgent({ consoleUrl: "ws://192.0.2.10:3000", token: "dcce_0123456789abcdef" });
    expect(await a.exited).toBe(2);
    expect(a.output()).toContain("plain ws:// is only allowed to loopback");
  });
});
