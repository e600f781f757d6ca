#!/usr/bin/env node
// Deploy overhead of the whole product (DESIGN.md "Performance targets": register → port healthy
// within 1.2× of doing the same by hand). On the same fixture repository and busybox image, in the
// same run, time
//   by hand:  git clone --depth 1 over loopback smart HTTP + docker-compose up -d + probe loop
//   console:  POST /api/trpc/apps.create (admin token) on the built console, which places the app
//             and sends the signed provision command to a real agent process that clones, renders
//             compose and runs it on the real engine, until apps.events reports the app RUNNING
//             and reachable (the agent's own probe answered) + the same probe loop
// until the port serves the repository's page. Each probe loop starts when its side says the
// container runs (compose returned / the console's event): probing a published port while Docker
// still sets the container up stalls it for about a second (see scripts/lib/deploy-by-hand.mjs).
// Runs alternate (one unmeasured warm-up of each first); prints p50 of both and the ratio.
//
// Run after `npm run build` and `bash scripts/test-deps.sh` (Docker engine + dcc-test/busybox:1):
//   node_modules/.bin/tsx scripts/bench-deploy-console.mjs [runs=10]
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { startConsole } from "../tests/support/console.ts";
import { TEST_IMAGE, dockerAvailable, removeByLabel } from "../tests/support/docker.ts";
import { startGitServer } from "../tests/support/git-server.ts";
import { freePort } from "../tests/support/net.ts";
import { openEvents, summary } from "./lib/bench-console.mjs";
import { PROBE_MS, deployByHand, untilServed } from "./lib/deploy-by-hand.mjs";

const runs = Number(process.argv[2] ?? 10);
if (!Number.isInteger(runs) || runs < 1) throw new Error("usage: bench-deploy-console.mjs [runs ≥ 1]");
if (!(await dockerAvailable())) throw new Error("no Docker engine: run `bash scripts/test-deps.sh` first");
const label = `dcc-bench-${randomBytes(3).toString("hex")}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const base = await mkdtemp(join(tmpdir(), "dcc-bench-console-"));
const git = await startGitServer();
const repo = await git.createRepo("bench-site", { "index.html": "<h1>bench page</h1>\n" });
const c = await startConsole({ env: { DCC_ALLOW_INSECURE_GIT: "1", DCC_BASE_IMAGE: TEST_IMAGE } });
let agent = null;
let hostId = null;

async function call(kind, path, input) {
  const r = await c[kind](path, input);
  if (r.status !== 200) throw new Error(`${path} answered ${r.status}: ${JSON.stringify(r.body.error ?? r.body)}`);
  return r.body.result.data;
}

/** Resolvers waiting for "<app> RUNNING and reachable" on the stream. */
const reachableWaiters = new Map();
const state = new Map();
let closeEvents = () => {};

async function viaConsole(i) {
  const port = await freePort();
  const name = `bench-${i < 0 ? "warm" : i}-${randomBytes(2).toString("hex")}`;
  const reported = new Promise((r) => reachableWaiters.set(name, r));
  const t0 = performance.now();
  const created = await call("mutate", "apps.create", { name, repository: repo.url, startCommand: "httpd -f -p $PORT -h /app", port, hostId });
  if (created.status !== "STARTING") throw new Error(`${name}: created as ${created.status} (${created.phase})`);
  const seenAt = await Promise.race([reported, sleep(60_000).then(() => null)]);
  if (seenAt === null) throw new Error(`${name}: no RUNNING + reachable event within 60 s`);
  await untilServed(port, "bench page");
  const served = performance.now() - t0;
  // Clean up (not timed): deinstall through the API and wait for the record to go.
  await call("mutate", "apps.deinstall", { name });
  for (let k = 0; (await c.query("apps.get", { name })).status !== 404; k++) {
    if (k > 600) throw new Error(`${name}: deinstall did not finish`);
    await sleep(50);
  }
  reachableWaiters.delete(name);
  state.delete(name);
  return { served, running: seenAt - t0 };
}

async function byHand(i) {
  const port = await freePort();
  return deployByHand({ repoUrl: repo.url, expected: "bench page", image: TEST_IMAGE, port, dir: join(base, "hand", `h${i}`), label, project: `bench-hand-${label}-${i < 0 ? "warm" : i}` });
}

const hand = [];
const served = [];
const running = [];
try {
  // A real agent, enrolled with a one-time token, dialling the console like on a GPU box.
  const enrollment = await call("mutate", "hosts.createEnrollment", { name: "bench-host" });
  agent = spawn(
    process.execPath,
    ["agent/dist/dcc-agent.mjs", "--console", enrollment.consoleUrl, "--enroll", enrollment.token, "--state-dir", join(base, "agent"), "--workspace-root", join(base, "workspaces"), "--allow-insecure-git"],
    { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root" }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let agentOut = "";
  agent.stdout.on("data", (d) => (agentOut = (agentOut + d).slice(-20_000)));
  agent.stderr.on("data", (d) => (agentOut = (agentOut + d).slice(-20_000)));
  for (let k = 0; ; k++) {
    const hosts = await call("query", "hosts.list");
    const h = hosts.items.find((x) => x.online);
    if (h) {
      hostId = h.id;
      break;
    }
    if (k > 300 || agent.exitCode !== null) throw new Error(`the agent did not come online:\n${agentOut}`);
    await sleep(100);
  }

  const events = await openEvents(
    c.url,
    c.authHeaders,
    (m, at) => {
      if (!m.app) return;
      const s = { ...(state.get(m.app) ?? {}), ...m };
      state.set(m.app, s);
      if (s.status === "RUNNING" && s.health === "reachable") reachableWaiters.get(m.app)?.(at);
    },
    () => performance.now(),
  );
  closeEvents = events.close;

  // one unmeasured round warms caches (compose detection, page cache, the agent's first deploy)
  await byHand(-1);
  await viaConsole(-1);
  for (let i = 0; i < runs; i++) {
    hand.push(await byHand(i));
    const r = await viaConsole(i);
    served.push(r.served);
    running.push(r.running);
    process.stderr.write(`  run ${i + 1}/${runs}: by hand ${hand[i].toFixed(0)} ms, console ${r.served.toFixed(0)} ms (RUNNING + reachable event at ${r.running.toFixed(0)} ms)\n`);
  }
} finally {
  closeEvents();
  if (agent && agent.exitCode === null) {
    agent.kill("SIGTERM");
    await Promise.race([new Promise((r) => agent.once("exit", r)), sleep(5000)]);
    if (agent.exitCode === null) agent.kill("SIGKILL");
  }
  if (hostId) await removeByLabel(`dcc.host=${hostId}`).catch(() => {});
  await removeByLabel(`dcc.bench=${label}`).catch(() => {});
  await c.dispose();
  await git.close();
  await rm(base, { recursive: true, force: true });
}

const fmt = (x) => (Number.isFinite(x) ? `${x.toFixed(0)} ms` : "n/a");
const line = (xs) => {
  const q = summary(xs);
  return `p50 ${fmt(q.p50)}  min ${fmt(q.min)}  max ${fmt(q.max)}`;
};
console.log(`console deploy benchmark, ${runs} runs each (tiny repo over loopback smart HTTP, ${TEST_IMAGE}, probe every ${PROBE_MS} ms)`);
console.log(`  by hand (clone + compose up + probe):                   ${line(hand)}`);
console.log(`  apps.create → apps.events RUNNING + reachable:          ${line(running)}`);
console.log(`  apps.create → … → port serves (same probe loop):        ${line(served)}`);
console.log(`  ratio console/by-hand (p50, port serves): ${(summary(served).p50 / summary(hand).p50).toFixed(2)}  (target ≤ 1.20)`);
