#!/usr/bin/env node
// Added latency of the HTTPS gateway (DESIGN.md "Gateway"; target ≤ 1 ms p50 added on loopback).
//
// What it does: starts a tiny app on 127.0.0.1 (HTTP + WebSocket echo), and the agent's gateway
// for it exactly as the agent runs it (agent/src/gateway: a real Caddy from PATH with the internal
// CA on free high ports, the forward-auth server, a console-signed ticket exchanged for the
// gateway cookie). Then, sequentially, one request at a time on kept-alive connections:
//  - HTTP GET straight to the app's port vs. through the gateway with the cookie, and with an API
//    token (its console answer cached, as in service);
//  - WebSocket round trips (send, wait for the echo) straight vs. through the gateway.
// Through the gateway a request is TLS, Caddy, a forward-auth call to the agent, then the proxy
// hop: all of that is in the figure. Prints p50/p90/p99 and the load average before and after.
//
//   node_modules/.bin/tsx scripts/bench-gateway.mjs [--requests 2000] [--warmup 300]
import { createPrivateKey, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { Agent as HttpAgent, createServer, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { createServer as netServer } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import WebSocket, { WebSocketServer } from "ws";
import { signTicket, tokenHash } from "../agent/src/contract/gateway.ts";
import { generateSigningKeyPair, publicKeyFromBase64 } from "../agent/src/contract/protocol.ts";
import { Gateway } from "../agent/src/gateway/gateway.ts";

const { values } = parseArgs({ options: { requests: { type: "string", default: "2000" }, warmup: { type: "string", default: "300" } } });
const N = Number(values.requests);
const WARM = Number(values.warmup);
const DOMAIN = "bench.test";
const la = () => loadavg().map((x) => x.toFixed(2)).join(" ");

const freePort = () =>
  new Promise((resolve) => {
    const s = netServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
const lookup = (_h, opts, cb) => (opts?.all ? cb(null, [{ address: "127.0.0.1", family: 4 }]) : cb(null, "127.0.0.1", 4));
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const fmt = (xs) => `p50 ${pct(xs, 50).toFixed(3)} ms  p90 ${pct(xs, 90).toFixed(3)} ms  p99 ${pct(xs, 99).toFixed(3)} ms`;

console.log(`bench-gateway: ${N} requests per path (after ${WARM} warm-up), load average before: ${la()}`);

// The app.
const app = createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    res.writeHead(200, { "content-type": "text/plain", "content-length": "2" });
    res.end("ok");
  });
});
const wss = new WebSocketServer({ server: app });
wss.on("connection", (ws) => ws.on("message", (m) => ws.send(m)));
await new Promise((r) => app.listen(0, "127.0.0.1", r));
const appPort = app.address().port;

// The gateway as the agent runs it.
const dir = mkdtempSync(join(tmpdir(), "dcc-bench-gw-"));
const keys = generateSigningKeyPair();
const TOKEN = `dcc_${randomBytes(16).toString("hex")}`;
const httpsPort = await freePort();
const gw = new Gateway({
  config: { domain: DOMAIN, tls: "internal", httpsPort, httpPort: await freePort(), caddyBin: process.env.DCC_GATEWAY_CADDY || "caddy", tokenCacheS: 30, idleMinuteMs: 60_000 },
  stateDir: dir,
  consoleOrigin: "http://console.invalid",
  hostId: () => "bench-host",
  consoleKey: () => publicKeyFromBase64(keys.publicKey),
  checkToken: async (_app, hash) => ({ ok: hash === tokenHash(TOKEN), sub: "token:bench" }),
  access: () => ({ ready: true }),
  log: () => {},
});
await gw.start([{ name: "app", port: appPort }]);
const host = `app.${DOMAIN}`;

const httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
const httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false });
function get(viaGateway, path, headers = {}) {
  return new Promise((resolve, reject) => {
    const opts = viaGateway
      ? { host, port: httpsPort, path, headers, servername: host, lookup, agent: httpsAgent }
      : { host: "127.0.0.1", port: appPort, path, headers, agent: httpAgent };
    const req = (viaGateway ? httpsRequest : httpRequest)(opts, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

// Caddy issues the certificate in the background after the load.
for (let i = 0; ; i++) {
  try {
    await get(true, "/");
    break;
  } catch (e) {
    if (i > 100) throw e;
    await new Promise((r) => setTimeout(r, 200));
  }
}
const ticket = signTicket(
  { v: 1, hostId: "bench-host", app: "app", sub: "user:bench", exp: Date.now() + 60_000, until: Date.now() + 3600_000, nonce: randomBytes(12).toString("base64url") },
  createPrivateKey(keys.privateKeyPem),
);
const landing = await get(true, `/.dcc/ticket?t=${ticket}`);
const cookie = String(landing.headers["set-cookie"]).split(";")[0];

async function timeHttp(label, viaGateway, headers) {
  for (let i = 0; i < WARM; i++) await get(viaGateway, "/", headers);
  const xs = [];
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    const r = await get(viaGateway, "/", headers);
    xs.push(performance.now() - t0);
    if (r.status !== 200) throw new Error(`${label}: HTTP ${r.status} ${r.body}`);
  }
  console.log(`  ${label.padEnd(34)} ${fmt(xs)}`);
  return xs;
}

async function timeWs(label, url, headers) {
  const ws = new WebSocket(url, { headers, rejectUnauthorized: false, lookup, servername: host });
  await new Promise((r, j) => (ws.once("open", r), ws.once("error", j)));
  const rtt = () =>
    new Promise((r) => {
      const t0 = performance.now();
      ws.once("message", () => r(performance.now() - t0));
      ws.send("ping");
    });
  for (let i = 0; i < WARM; i++) await rtt();
  const xs = [];
  for (let i = 0; i < N; i++) xs.push(await rtt());
  ws.close();
  console.log(`  ${label.padEnd(34)} ${fmt(xs)}`);
  return xs;
}

console.log("HTTP GET (one at a time, kept-alive connection):");
const direct = await timeHttp("straight to 127.0.0.1:<port>", false, {});
const viaCookie = await timeHttp("through the gateway (cookie)", true, { cookie });
const viaToken = await timeHttp("through the gateway (API token)", true, { authorization: `Bearer ${TOKEN}` });
console.log("WebSocket round trip (send → echo):");
const wsDirect = await timeWs("straight to 127.0.0.1:<port>", `ws://127.0.0.1:${appPort}/`, {});
const wsGw = await timeWs("through the gateway", `wss://${host}:${httpsPort}/`, { cookie });

const added = (a, b) => (pct(b, 50) - pct(a, 50)).toFixed(3);
console.log(`added by the gateway, p50: HTTP ${added(direct, viaCookie)} ms (cookie), ${added(direct, viaToken)} ms (token); WebSocket ${added(wsDirect, wsGw)} ms (target ≤ 1 ms)`);
console.log(`load average after: ${la()}`);

await gw.stop();
httpAgent.destroy();
httpsAgent.destroy();
for (const c of wss.clients) c.terminate();
wss.close();
app.close();
rmSync(dir, { recursive: true, force: true });
