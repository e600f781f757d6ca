#!/usr/bin/env node
// Agent part of status propagation (DESIGN.md "Performance targets"): a container killed through
// the Engine API → StatusReport STOPPED delivered by Ops.watch (Docker event stream).
// Repeats kill → STOPPED → start → RUNNING and prints p50/p95/max of kill→STOPPED in ms.
//
// Run after `bash scripts/test-deps.sh`:
//   node_modules/.bin/tsx scripts/bench-status.mjs [runs=30]
import Dockerode from "dockerode";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Dispatcher } from "../agent/src/dispatch.ts";
import { Ops } from "../agent/src/ops/ops.ts";
import { AppQueue } from "../agent/src/queue.ts";
import { TEST_IMAGE, removeByLabel } from "../tests/support/docker.ts";
import { startGitServer } from "../tests/support/git-server.ts";
import { freePort } from "../tests/support/net.ts";

const runs = Number(process.argv[2] ?? 30);
const hostId = `dcc-bench-${randomBytes(3).toString("hex")}`;
const docker = new Dockerode();
const git = await startGitServer();
const repo = await git.createRepo("status-site", { "index.html": "ok\n" });
const base = await mkdtemp(join(tmpdir(), "dcc-bench-status-"));
const queue = new AppQueue();
const manager = await Ops.create({ workspaceRoot: join(base, "root"), stateDir: join(base, "state"), hostId, allowInsecureGit: true, docker, log: () => {}, exclusive: (app, task) => queue.exclusive(app, task) });
// The agent's own command path: dispatcher → per-app queue → action (answers carry the observation).
const dispatcher = new Dispatcher({ hostId: hostId, ops: async () => manager, unavailable: () => "no ops", queue, log: () => {} });
const apply = async (app, action, params) => {
  const out = await dispatcher.run({ id: randomUUID(), action, app, params }, () => {});
  if (!out.ok) throw new Error(out.error);
  return out.result;
};

let waiter = null;
const unwatch = manager.watch((report) => {
  if (waiter && report.app === name && waiter.match(report)) {
    const w = waiter;
    waiter = null;
    w.resolve(performance.now());
  }
});
const until = (match, timeoutMs = 10_000) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("timed out waiting for a status report")), timeoutMs);
    waiter = { match, resolve: (t) => (clearTimeout(timer), resolve(t)) };
  });

const name = `status-${randomBytes(2).toString("hex")}`;
const port = await freePort();
const spec = { appId: "bench-status", name, repository: repo.url, startCommand: "httpd -f -p $PORT -h /app", installCommand: null, port, image: TEST_IMAGE, gpuDevices: [], capAdd: [], keepPaths: [] };

const samples = [];
try {
  let running = until((r) => r.status === "RUNNING");
  await apply(name, "provision", { spec });
  await running;
  for (let i = 0; i < runs; i++) {
    const [c] = await docker.listContainers({ filters: { label: [`dcc.app=${name}`, `dcc.host=${hostId}`] } });
    const stopped = until((r) => r.status === "STOPPED");
    const t0 = performance.now();
    await docker.getContainer(c.Id).kill();
    samples.push((await stopped) - t0);
    running = until((r) => r.status === "RUNNING");
    await apply(name, "start", {});
    await running;
  }
} finally {
  await apply(name, "deinstall", {}).catch(() => {});
  unwatch();
  manager.close();
  await removeByLabel(`dcc.host=${hostId}`).catch(() => {});
  await git.close();
  await rm(base, { recursive: true, force: true });
}

const s = [...samples].sort((a, b) => a - b);
const q = (x) => s[Math.min(s.length - 1, Math.ceil(x * s.length) - 1)];
console.log(`status propagation (Engine API kill → StatusReport STOPPED from Ops.watch), ${runs} runs`);
console.log(`  p50 ${q(0.5).toFixed(1)} ms  p95 ${q(0.95).toFixed(1)} ms  max ${s[s.length - 1].toFixed(1)} ms`);
