#!/usr/bin/env node
// Deploy overhead of the agent's ops layer (DESIGN.md "Performance targets"): on the same fixture
// repository and busybox image, time
//   by hand: git clone --depth 1 over loopback smart HTTP + docker-compose up -d + probe loop
//   agent:   dispatcher provision + the same probe loop
// until the port serves the repository's page. Prints p50 of both and the ratio (target ≤ 1.2).
//
// Run after `bash scripts/test-deps.sh` (Docker engine + dcc-test/busybox:1):
//   node_modules/.bin/tsx scripts/bench-deploy.mjs [runs=10]
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
import { summary } from "./lib/bench-console.mjs";
import { PROBE_MS, deployByHand, untilServed } from "./lib/deploy-by-hand.mjs";

const runs = Number(process.argv[2] ?? 10);
const label = `dcc-bench-${randomBytes(3).toString("hex")}`;

const git = await startGitServer();
const repo = await git.createRepo("bench-site", { "index.html": "<h1>bench page</h1>\n" });
const base = await mkdtemp(join(tmpdir(), "dcc-bench-"));
const queue = new AppQueue();
const manager = await Ops.create({ workspaceRoot: join(base, "root"), stateDir: join(base, "state"), hostId: label, allowInsecureGit: true, log: () => {}, exclusive: (app, task) => queue.exclusive(app, task) });
// The agent's own command path: dispatcher → per-app queue → action (answers carry the observation).
const dispatcher = new Dispatcher({ hostId: label, ops: async () => manager, unavailable: () => "no ops", queue, log: () => {} });
const apply = async (app, action, params) => {
  const out = await dispatcher.run({ id: randomUUID(), action, app, params }, () => {});
  if (!out.ok) throw new Error(out.error);
  return out.result;
};
const unwatch = manager.watch(() => {});

async function byHand(i) {
  const port = await freePort();
  const project = `bench-hand-${label}-${i}`;
  return deployByHand({ repoUrl: repo.url, expected: "bench page", image: TEST_IMAGE, port, dir: join(base, "hand", `h${i}`), label, project });
}

async function viaAgent(i) {
  const port = await freePort();
  const name = `bench-${i}-${randomBytes(2).toString("hex")}`;
  const spec = { appId: `bench-${i}`, name, repository: repo.url, startCommand: "httpd -f -p $PORT -h /app", installCommand: null, port, image: TEST_IMAGE, gpuDevices: [], capAdd: [], keepPaths: [] };
  const t0 = performance.now();
  await apply(name, "provision", { spec });
  await untilServed(port, "bench page");
  const ms = performance.now() - t0;
  await apply(name, "deinstall", {});
  return ms;
}

const hand = [];
const agent = [];
try {
  // one unmeasured round warms caches (compose detection, page cache, image layers)
  await byHand(-1);
  await viaAgent(-1);
  for (let i = 0; i < runs; i++) {
    hand.push(await byHand(i));
    agent.push(await viaAgent(i));
  }
} finally {
  unwatch();
  manager.close();
  await removeByLabel(`dcc.host=${label}`).catch(() => {});
  await removeByLabel(`dcc.bench=${label}`).catch(() => {});
  await git.close();
  await rm(base, { recursive: true, force: true });
}

const fmt = (x) => `${x.toFixed(0)} ms`;
console.log(`deploy benchmark, ${runs} runs each (tiny repo, ${TEST_IMAGE}, probe every ${PROBE_MS} ms)`);
const [h, a] = [summary(hand), summary(agent)];
console.log(`  by hand (clone + compose up + probe): p50 ${fmt(h.p50)}  min ${fmt(h.min)}  max ${fmt(h.max)}`);
console.log(`  dispatcher provision + probe: p50 ${fmt(a.p50)}  min ${fmt(a.min)}  max ${fmt(a.max)}`);
console.log(`  ratio agent/by-hand (p50): ${(a.p50 / h.p50).toFixed(2)}  (target ≤ 1.20)`);
