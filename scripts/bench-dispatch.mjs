#!/usr/bin/env node
// Command dispatch latency: from the API call (POST /api/trpc/hosts.ping) to the moment the agent
// has verified the signed command (its "command verified" log line, read from its stdout pipe).
// Starts the built console and the built agent as real processes on this machine; prints p50/p99.
//
//   npm run build && node scripts/bench-dispatch.mjs [--runs 200] [--warmup 20]
import { spawn } from "node:child_process";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { ROOT, startConsole, summary } from "./lib/bench-console.mjs";

const { values } = parseArgs({ options: { runs: { type: "string", default: "200" }, warmup: { type: "string", default: "20" } } });
const RUNS = Number(values.runs);
const WARMUP = Number(values.warmup);

const c = await startConsole();
const children = [];
process.on("exit", () => {
  for (const p of children) if (p.exitCode === null) p.kill("SIGKILL");
});
process.on("SIGINT", () => process.exit(130));
const call = (path, input) => c.mutate(path, input);

const enrol = await call("hosts.createEnrollment", {});
const verifiedAt = new Map();
const waiters = new Map();
let hostId = null;
const agentProc = spawn(
  process.execPath,
  [join(ROOT, "agent/dist/dcc-agent.mjs"), "--console", enrol.consoleUrl, "--enroll", enrol.token, "--state-dir", join(c.dir, "agent"), "--workspace-root", join(c.dir, "ws")],
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

const fmt = (x) => `${x.toFixed(2)} ms`;
const d = summary(dispatch);
const a = summary(api);
console.log(`dispatch latency, API call → command verified at the agent (${RUNS} runs after ${WARMUP} warm-up, ping action, one machine):`);
console.log(`  p50 ${fmt(d.p50)}   p99 ${fmt(d.p99)}   max ${fmt(d.max)}   (target p99 ≤ 20 ms)`);
console.log(`  API answer alone: p50 ${fmt(a.p50)}   p99 ${fmt(a.p99)}`);
for (const p of children) p.kill("SIGKILL");
await c.stop();
process.exit(0);
