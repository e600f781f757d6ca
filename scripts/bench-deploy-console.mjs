#!/usr/bin/env node
// Deploy overhead of the whole product (DESIGN.md "Performance targets": ≤ 1.05× by hand on a tiny
// repository; ≤ 1.1× on a large one; a reinstall of an unchanged large repository ≤ 0.5× a fresh
// clone + up by hand). On the same repository and busybox image, in the same run, time
//   by hand:  git clone --depth 1 over loopback smart HTTP + docker-compose up -d + probe loop
//   console:  POST /api/trpc/apps.create (admin token) on the built console, which places the app
//             and sends the signed provision command to a real agent process that clones, renders
//             compose and runs it on the real engine, until apps.events reports the app RUNNING
//             and reachable (the agent's own probe answered) + the same probe loop
// until the port serves the repository's page. Each probe loop starts when its side says the
// container runs (compose returned / the console's event): probing a published port while Docker
// still sets the container up stalls it for about a second (see scripts/lib/deploy-by-hand.mjs).
//
// Tiny mode (default): a one-file repository; runs alternate (one unmeasured warm-up of each first).
// Large mode (--large): a generated repository shaped like the seeded templates (scripts/lib/
// large-repo.mjs: ~3,000 files, ~30 MB of blobs, 300 commits). Per run, by hand once before and once
// after these, through the console: the first deploy (apps.create), a second app from the same
// repository (apps.create), and a reinstall of the first, unchanged (apps.reinstall → the agent has
// settled it: no phase, RUNNING and reachable → the same probe loop serves the page); both apps are then deinstalled (the
// host's object store goes with the last one), so every run's first deploy clones afresh.
// Every ratio divides by the by-hand p50 of the same run. The load average is printed.
//
// Run after `npm run build` and `bash scripts/test-deps.sh` (Docker engine + dcc-test/busybox:1):
//   node_modules/.bin/tsx scripts/bench-deploy-console.mjs [runs=10] [--large]
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { startConsole } from "../tests/support/console.ts";
import { TEST_IMAGE, dockerAvailable, removeByLabel } from "../tests/support/docker.ts";
import { startGitServer } from "../tests/support/git-server.ts";
import { freePort } from "../tests/support/net.ts";
import { openEvents, summary } from "./lib/bench-console.mjs";
import { PROBE_MS, deployByHand, untilServed } from "./lib/deploy-by-hand.mjs";
import { generateLargeRepo } from "./lib/large-repo.mjs";

const args = process.argv.slice(2);
const large = args.includes("--large");
const runs = Number(args.find((a) => !a.startsWith("--")) ?? (large ? 3 : 10));
if (!Number.isInteger(runs) || runs < 1) throw new Error("usage: bench-deploy-console.mjs [runs ≥ 1] [--large]");
if (!(await dockerAvailable())) throw new Error("no Docker engine: run `bash scripts/test-deps.sh` first");
const label = `dcc-bench-${randomBytes(3).toString("hex")}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const base = await mkdtemp(join(tmpdir(), "dcc-bench-console-"));
const git = await startGitServer();
let repo;
let expected = "bench page";
let shape = "tiny repo";
if (large) {
  const t = performance.now();
  const made = await generateLargeRepo(join(git.root, "bench-large.git"));
  repo = { url: `${git.url}/bench-large.git`, sha: made.sha };
  expected = "large repository";
  shape = `generated repo: ${made.files} files, ${(made.blobBytes / 1e6).toFixed(1)} MB of blobs, ${made.commits} commits`;
  process.stderr.write(`  ${shape} (made in ${(performance.now() - t).toFixed(0)} ms)\n`);
} else {
  repo = await git.createRepo("bench-site", { "index.html": "<h1>bench page</h1>\n" });
}
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
/** Resolvers waiting for "<app>'s reinstall answered, then RUNNING and reachable". */
const resultWaiters = new Map();
const reinstalled = new Set();
const state = new Map();
const ports = new Map();
let closeEvents = () => {};

/** apps.create until the port serves; answers { served, running } in ms from the call. */
async function create(name) {
  const port = await freePort();
  const reported = new Promise((r) => reachableWaiters.set(name, r));
  const t0 = performance.now();
  const created = await call("mutate", "apps.create", { name, repository: repo.url, startCommand: "httpd -f -p $PORT -h /app", port, hostId });
  if (created.status !== "STARTING") throw new Error(`${name}: created as ${created.status} (${created.phase})`);
  const seenAt = await Promise.race([reported, sleep(120_000).then(() => null)]);
  if (seenAt === null) throw new Error(`${name}: no RUNNING + reachable event within 120 s`);
  await untilServed(port, expected);
  reachableWaiters.delete(name);
  ports.set(name, port);
  return { served: performance.now() - t0, running: seenAt - t0 };
}

/**
 * apps.reinstall until the agent has settled it (its phase back to none) with the app RUNNING,
 * reachable and serving again; then (not timed) until its command is answered.
 */
async function reinstall(name) {
  const t0 = performance.now();
  const done = new Promise((r) => resultWaiters.set(name, r));
  const { commandId } = await call("mutate", "apps.reinstall", { name });
  const seenAt = await Promise.race([done, sleep(120_000).then(() => null)]);
  if (seenAt === null) throw new Error(`${name}: reinstall did not finish RUNNING + reachable within 120 s`);
  await untilServed(ports.get(name), expected);
  const ms = performance.now() - t0;
  resultWaiters.delete(name);
  for (let k = 0; ; k++) {
    const r = await c.db().execute({ sql: "SELECT state, error FROM commands WHERE id = ?", args: [commandId] });
    const row = r.rows[0];
    if (row?.state === "failed") throw new Error(`${name}: reinstall failed: ${row.error}`);
    if (row?.state === "done") break;
    if (k > 1200) throw new Error(`${name}: reinstall command not answered`);
    await sleep(50);
  }
  return ms;
}

/** Not timed: deinstall through the API and wait for the record to go. */
async function deinstall(name) {
  await call("mutate", "apps.deinstall", { name });
  for (let k = 0; (await c.query("apps.get", { name })).status !== 404; k++) {
    if (k > 1200) throw new Error(`${name}: deinstall did not finish`);
    await sleep(50);
  }
  state.delete(name);
  ports.delete(name);
}

async function viaConsole(i) {
  const name = `bench-${i < 0 ? "warm" : i}-${randomBytes(2).toString("hex")}`;
  const r = await create(name);
  await deinstall(name);
  return r;
}

async function byHand(i) {
  const port = await freePort();
  return deployByHand({ repoUrl: repo.url, expected, image: TEST_IMAGE, port, dir: join(base, "hand", `h${i}`), label, project: `bench-hand-${label}-${i}` });
}

const hand = [];
const served = [];
const running = [];
const seconds = [];
const reinstalls = [];
const loadBefore = loadavg();
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
      // A reinstall has begun once a phase shows (queued, fetch, …); it is over when none does.
      if (resultWaiters.has(m.app) && typeof m.phase === "string") reinstalled.add(m.app);
      if (s.status === "RUNNING" && s.health === "reachable") {
        reachableWaiters.get(m.app)?.(at);
        if (!s.phase && reinstalled.delete(m.app)) resultWaiters.get(m.app)?.(at);
      }
    },
    () => performance.now(),
  );
  closeEvents = events.close;

  // one unmeasured round warms caches (compose detection, page cache, the agent's first deploy)
  await byHand(-1);
  await viaConsole(-1);
  for (let i = 0; i < runs; i++) {
    if (!large) {
      hand.push(await byHand(i));
      const r = await viaConsole(i);
      served.push(r.served);
      running.push(r.running);
      process.stderr.write(`  run ${i + 1}/${runs}: by hand ${hand.at(-1).toFixed(0)} ms, console ${r.served.toFixed(0)} ms (RUNNING + reachable event at ${r.running.toFixed(0)} ms)\n`);
      continue;
    }
    hand.push(await byHand(2 * i));
    const [a, b] = [`big-a-${i}-${randomBytes(2).toString("hex")}`, `big-b-${i}-${randomBytes(2).toString("hex")}`];
    const first = await create(a);
    const second = await create(b);
    const again = await reinstall(a);
    await deinstall(a);
    await deinstall(b);
    hand.push(await byHand(2 * i + 1));
    served.push(first.served);
    running.push(first.running);
    seconds.push(second.served);
    reinstalls.push(again);
    process.stderr.write(
      `  run ${i + 1}/${runs}: by hand ${hand.at(-2).toFixed(0)} / ${hand.at(-1).toFixed(0)} ms; console first ${first.served.toFixed(0)}, second app ${second.served.toFixed(0)}, reinstall ${again.toFixed(0)} ms (load ${loadavg()[0].toFixed(2)})\n`,
    );
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
const ratio = (xs) => (summary(xs).p50 / summary(hand).p50).toFixed(2);
const load = (l) => l.map((x) => x.toFixed(2)).join(" ");
console.log(`console deploy benchmark, ${runs} runs (${shape} over loopback smart HTTP, ${TEST_IMAGE}, probe every ${PROBE_MS} ms)`);
console.log(`  load average before: ${load(loadBefore)}; after: ${load(loadavg())} (2 cores, shared)`);
console.log(`  by hand (clone + compose up + probe):                   ${line(hand)}`);
console.log(`  apps.create → apps.events RUNNING + reachable:          ${line(running)}`);
console.log(`  apps.create → … → port serves (same probe loop):        ${line(served)}`);
if (!large) {
  console.log(`  ratio console/by-hand (p50, port serves): ${ratio(served)}  (target ≤ 1.05)`);
} else {
  console.log(`  second app, same repository → port serves:              ${line(seconds)}`);
  console.log(`  reinstall, unchanged → settled → port serves:           ${line(reinstalls)}`);
  console.log(`  ratio first deploy / by hand:  ${ratio(served)}  (target ≤ 1.10)`);
  console.log(`  ratio second app / by hand:    ${ratio(seconds)}`);
  console.log(`  ratio reinstall / by hand:     ${ratio(reinstalls)}  (target ≤ 0.50)`);
}
