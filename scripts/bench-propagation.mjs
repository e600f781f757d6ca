#!/usr/bin/env node
// Status propagation over the whole path (DESIGN.md "Performance targets": p50 ≤ 100 ms,
// p95 ≤ 200 ms, worst ≤ 500 ms): a container killed through the Docker Engine API → the
// `apps.events` message with status STOPPED for that app arriving at an SSE client.
//
// Everything is real: the built console as a process with its local agent (DCC_LOCAL_AGENT=1,
// the agent a child process dialling the console's /agent websocket), the Docker engine, a
// fixture repository served over smart HTTP on loopback, the dcc-test/busybox:1 image. The path
// measured: Engine API kill (dockerode `container.kill()`, SIGKILL) → Docker's event stream →
// the agent's status report → websocket → hub → database → change bus → SSE bytes at the client.
// Between kills the app is started again through the API (apps.start) and the run waits until
// apps.events says it is RUNNING and answering, and the start command's result is in.
//
// Run after `bash scripts/test-deps.sh` and `npm run build`:
//   node_modules/.bin/tsx scripts/bench-propagation.mjs [--runs 30]
import Dockerode from "dockerode";
import { performance } from "node:perf_hooks";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { TEST_IMAGE, removeByLabel } from "../tests/support/docker.ts";
import { startGitServer } from "../tests/support/git-server.ts";
import { freePort, ms, openEvents, sleep, startConsole, summary } from "./lib/bench-console.mjs";

const { values } = parseArgs({ options: { runs: { type: "string", default: "30" }, verbose: { type: "boolean", default: false } } });
const RUNS = Number(values.runs);
const log = (m) => console.log(`[bench-propagation ${new Date().toISOString().slice(11, 19)}] ${m}`);
const now = () => performance.now();

const docker = new Dockerode();
const git = await startGitServer();
const repo = await git.createRepo("propagation-site", { "index.html": "propagation\n" });
const c = await startConsole({ env: { DCC_LOCAL_AGENT: "1", DCC_ALLOW_INSECURE_GIT: "1", DCC_BASE_IMAGE: TEST_IMAGE }, quiet: !values.verbose });
const name = "propagation-site";
let hostId = "";
let events;
let dockerEvents;
try {
  for (let i = 0; !hostId; i++) {
    hostId = (await c.query("hosts.list")).items.find((h) => h.online)?.id ?? "";
    if (!hostId && i > 600) throw new Error(`the local agent did not come online:\n${c.output().slice(-3000)}`);
    if (!hostId) await sleep(100);
  }
  log(`local agent online as host ${hostId}`);

  // What the SSE client has seen of the app, and a way to wait for a message.
  const state = { status: null, health: null, results: 0 };
  let waiter = null;
  events = await openEvents(
    c.url,
    c.auth,
    (m, t) => {
      if (m.app !== name) return;
      if (m.status !== undefined) state.status = m.status;
      if (m.health !== undefined) state.health = m.health;
      if (m.type === "result") state.results++;
      if (waiter?.match(m)) {
        const w = waiter;
        waiter = null;
        w.resolve(t);
      }
    },
    now,
  );
  const until = (what, match, timeoutMs = 60_000) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
      waiter = { match, resolve: (t) => (clearTimeout(timer), resolve(t)) };
    });
  /** Resolves once the stream has shown the app RUNNING and answering and `results` command results. */
  const runningAgain = async (results) => {
    const deadline = Date.now() + 60_000;
    while (!(state.status === "RUNNING" && state.health === "reachable" && state.results >= results)) {
      if (Date.now() > deadline) throw new Error(`app not RUNNING+reachable in time (${JSON.stringify(state)})`);
      await sleep(10);
    }
  };

  // Docker's own share, for reference: when its `die` event reaches a client on this machine.
  let dieWaiter = null;
  dockerEvents = await docker.getEvents({ filters: { type: ["container"], event: ["die"], label: [`dcc.app=${name}`, `dcc.host=${hostId}`] } });
  dockerEvents.on("data", () => {
    const t = now();
    dieWaiter?.(t);
    dieWaiter = null;
  });

  const port = await freePort();
  await c.mutate("apps.create", { name, repository: repo.url, startCommand: "httpd -f -p $PORT -h /app", port, hostId });
  await runningAgain(1);
  log(`deployed ${name} on port ${port}; ${RUNS} kills follow`);

  const samples = [];
  const dies = [];
  for (let i = 0; i < RUNS; i++) {
    const [info] = await docker.listContainers({ filters: { label: [`dcc.app=${name}`, `dcc.host=${hostId}`], status: ["running"] } });
    if (!info) throw new Error("no running container to kill");
    const stopped = until("status STOPPED", (m) => m.status === "STOPPED");
    const died = new Promise((r) => (dieWaiter = r));
    const t0 = now();
    await docker.getContainer(info.Id).kill();
    const [t1, td] = await Promise.all([stopped, died]);
    samples.push(t1 - t0);
    dies.push(td - t0);
    if (values.verbose) log(`run ${i + 1}: ${ms(t1 - t0)} (die event after ${ms(td - t0)})`);
    const results = state.results;
    await c.mutate("apps.start", { name });
    await runningAgain(results + 1);
  }

  const s = summary(samples);
  const d = summary(dies);
  console.log("");
  console.log(`status propagation, ${RUNS} runs: Engine API kill (dockerode, SIGKILL) → apps.events message with status STOPPED at an SSE client`);
  console.log(`  p50 ${ms(s.p50)}  p95 ${ms(s.p95)}  max ${ms(s.max)}   (targets: p50 ≤ 100 ms, p95 ≤ 200 ms, max ≤ 500 ms)`);
  console.log(`  for reference, Docker's own 'die' event at a client on this machine: p50 ${ms(d.p50)}  p95 ${ms(d.p95)}  max ${ms(d.max)}`);
  console.log(`  console, local agent, Docker engine and this client on one machine (load average ${loadavg().map((x) => x.toFixed(1)).join(" ")})`);
} finally {
  events?.close();
  dockerEvents?.destroy?.();
  await c.mutate("apps.deinstall", { name }).catch(() => {});
  await sleep(1000);
  await c.stop();
  if (hostId) await removeByLabel(`dcc.host=${hostId}`).catch(() => {});
  await git.close();
}
