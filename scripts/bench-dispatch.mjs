#!/usr/bin/env node
// Command dispatch latency: from the API call (POST /api/trpc/hosts.ping) to the moment the agent
// has verified the signed command (its "command verified" log line, read from its stdout pipe).
// Starts the built console and the built agent as real processes on this machine; prints p50/p99.
//
//   npm run build && node scripts/bench-dispatch.mjs [--runs 200] [--warmup 20]
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({ options: { runs: { type: "string", default: "200" }, warmup: { type: "string", default: "20" } } });
const RUNS = Number(values.runs);
const WARMUP = Number(values.warmup);

const freePort = () =>
  new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const dir = mkdtempSync(join(tmpdir(), "dcc-bench-dispatch-"));
const port = await freePort();
const adminToken = randomBytes(24).toString("hex");
const base = `http://127.0.0.1:${port}`;
const children = [];
const cleanup = () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
};
process.on("exit", cleanup);
process.on("SIGINT", () => process.exit(130));

const consoleProc = spawn(process.execPath, [join(ROOT, "build/server.mjs")], {
  cwd: ROOT,
  env: {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: "production",
    PORT: String(port),
    HOST: "127.0.0.1",
    DATABASE_URL: `file:${join(dir, "dcc.db")}`,
    DCC_DATA_DIR: dir,
    DCC_WORKSPACE_ROOT: join(dir, "ws"),
    DCC_LOCAL_AGENT: "0",
    DCC_ADMIN_TOKEN: adminToken,
  },
  stdio: ["ignore", "ignore", "inherit"],
});
children.push(consoleProc);
for (let i = 0; ; i++) {
  try {
    if ((await fetch(`${base}/healthz`)).ok) break;
  } catch {}
  if (i > 300) throw new Error("console did not start");
  await sleep(100);
}

const headers = { "content-type": "application/json", authorization: `Bearer ${adminToken}` };
const call = async (path, input) => {
  const r = await fetch(`${base}/api/trpc/${path}`, { method: "POST", headers, body: JSON.stringify(input) });
  const body = await r.json();
  if (!r.ok) throw new Error(`${path}: ${JSON.stringify(body)}`);
  return body.result.data;
};

const enrol = await call("hosts.createEnrollment", {});
const verifiedAt = new Map();
const waiters = new Map();
let hostId = null;
const agentProc = spawn(
  process.execPath,
  [join(ROOT, "agent/dist/dcc-agent.mjs"), "--console", enrol.consoleUrl, "--enroll", enrol.token, "--state-dir", join(dir, "agent"), "--workspace-root", join(dir, "ws")],
  { env: { PATH: process.env.PATH, HOME: process.env.HOME }, stdio: ["ignore", "pipe", "inherit"] },
);
children.push(agentProc);
let buf = "";
let connected;
const ready = new Promise((r) => (connected = r));
agentProc.stdout.on("data", (chunk) => {
  const now = performance.now();
  buf += chunk;
  const lines = buf.split("\n");
  buf = lines.pop();
  for (const line of lines) {
    if (!line.startsWith("{")) continue;
    const e = JSON.parse(line);
    if (e.msg === "connected") {
      hostId = e.hostId;
      connected();
    }
    if (e.msg === "command verified") {
      verifiedAt.set(e.id, now);
      waiters.get(e.id)?.(now);
    }
  }
});
await ready;

async function once() {
  const t0 = performance.now();
  const { commandId } = await call("hosts.ping", { id: hostId });
  const tApi = performance.now();
  const tVerified = verifiedAt.get(commandId) ?? (await new Promise((r) => waiters.set(commandId, r)));
  waiters.delete(commandId);
  return { dispatch: tVerified - t0, api: tApi - t0 };
}

for (let i = 0; i < WARMUP; i++) await once();
const dispatch = [];
const api = [];
for (let i = 0; i < RUNS; i++) {
  const r = await once();
  dispatch.push(r.dispatch);
  api.push(r.api);
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const fmt = (x) => `${x.toFixed(2)} ms`;
console.log(`dispatch latency, API call → command verified at the agent (${RUNS} runs after ${WARMUP} warm-up, ping action, one machine):`);
console.log(`  p50 ${fmt(pct(dispatch, 50))}   p99 ${fmt(pct(dispatch, 99))}   max ${fmt(Math.max(...dispatch))}   (target p99 ≤ 20 ms)`);
console.log(`  API answer alone: p50 ${fmt(pct(api, 50))}   p99 ${fmt(pct(api, 99))}`);
process.exit(0);
