#!/usr/bin/env node
// Host offline detection (DESIGN.md "Performance targets": agent silent → host offline and its
// apps grey, p50 ≤ 10 s, worst ≤ 15 s). An agent that goes silent without closing its socket (a
// frozen box, a dead link) is the case that matters: here the agent process is SIGSTOPped, so its
// websocket stays open and nothing arrives. Measured: SIGSTOP → the first apps.events message at
// an SSE client that carries the app with `hostOnline: false`. Then SIGCONT, and the run waits
// until the stream shows the app back (hostOnline true, RUNNING and reachable) before the next.
//
// Everything is real: the built console as a process, the built agent as a process dialling it,
// the Docker engine, a fixture repository over smart HTTP on loopback (git http-backend), the
// dcc-test/busybox:1 image. Stops by itself; removes its containers, data and repositories.
//
// Run after `bash scripts/test-deps.sh` and `npm run build`:
//   node scripts/bench-offline.mjs [--runs 10] [--silent-s N] [--verbose]
import { execFile, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs, promisify } from "node:util";
import { ROOT, freePort, openEvents, quantile, sleep, startConsole } from "./lib/bench-console.mjs";

const { values } = parseArgs({
  options: { runs: { type: "string", default: "10" }, verbose: { type: "boolean", default: false }, "silent-s": { type: "string" } },
});
const RUNS = Number(values.runs);
const TEST_IMAGE = "dcc-test/busybox:1";
const AGENT = join(ROOT, "agent/dist/dcc-agent.mjs");
const log = (m) => console.log(`[bench-offline ${new Date().toISOString().slice(11, 19)}] ${m}`);
const now = () => performance.now();
const sec = (x) => (Number.isFinite(x) ? `${(x / 1000).toFixed(2)} s` : "n/a");
const run = promisify(execFile);

for (const f of ["build/server.mjs", "agent/dist/dcc-agent.mjs"]) {
  if (!existsSync(join(ROOT, f))) throw new Error(`${f} is missing: run \`npm run build\` first`);
}

// ------------------------------------------------------------------ a smart-HTTP git server
const GIT_ENV = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: tmpdir(), GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null", GIT_TERMINAL_PROMPT: "0" };

async function startGit(name, files) {
  const base = mkdtempSync(join(tmpdir(), "dcc-bench-git-"));
  const bare = join(base, "repos", `${name}.git`);
  const work = join(base, "work");
  mkdirSync(work, { recursive: true });
  const git = (args, cwd) => execFileSync("git", args, { cwd, env: GIT_ENV, stdio: "pipe" });
  git(["init", "-q", "--bare", "--initial-branch=main", bare]);
  git(["init", "-q", "--initial-branch=main", work]);
  for (const [f, content] of Object.entries(files)) writeFileSync(join(work, f), content);
  git(["add", "-A"], work);
  git(["-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "-c", "commit.gpgsign=false", "commit", "-q", "-m", "bench"], work);
  git(["push", "-q", bare, "HEAD:refs/heads/main"], work);
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const env = {
      ...GIT_ENV,
      GIT_PROJECT_ROOT: join(base, "repos"),
      GIT_HTTP_EXPORT_ALL: "1",
      REQUEST_METHOD: req.method ?? "GET",
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      CONTENT_TYPE: req.headers["content-type"] ?? "",
      ...(req.headers["content-encoding"] ? { HTTP_CONTENT_ENCODING: req.headers["content-encoding"] } : {}),
      ...(typeof req.headers["git-protocol"] === "string" ? { HTTP_GIT_PROTOCOL: req.headers["git-protocol"] } : {}),
    };
    const child = spawn("git", ["http-backend"], { env });
    req.pipe(child.stdin);
    child.stdin.on("error", () => {});
    let head = Buffer.alloc(0);
    let sent = false;
    child.stdout.on("data", (chunk) => {
      if (sent) return void res.write(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      let status = 200;
      for (const line of head.subarray(0, end).toString("latin1").split("\r\n")) {
        const i = line.indexOf(":");
        if (i <= 0) continue;
        const k = line.slice(0, i).trim();
        const v = line.slice(i + 1).trim();
        if (k.toLowerCase() === "status") status = Number.parseInt(v, 10) || 200;
        else res.setHeader(k, v);
      }
      res.writeHead(status);
      sent = true;
      res.write(head.subarray(end + 4));
    });
    child.on("close", () => (sent ? res.end() : res.writeHead(500).end()));
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${server.address().port}/${name}.git`,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      rmSync(base, { recursive: true, force: true });
    },
  };
}

// ------------------------------------------------------------------ the run
const name = "offline-bench";
const agentRoot = mkdtempSync(join(tmpdir(), "dcc-bench-agent-"));
let agent = null;
let agentOut = "";
let events = null;
let hostId = "";
let git = null;
let c = null;

async function cleanUp() {
  if (agent && agent.exitCode === null) {
    try {
      agent.kill("SIGCONT");
    } catch {
      // gone
    }
  }
  events?.close();
  await c?.mutate("apps.deinstall", { name }).catch(() => {});
  if (agent && agent.exitCode === null && agent.signalCode === null) {
    agent.kill("SIGTERM");
    await Promise.race([new Promise((r) => agent.once("exit", r)), sleep(10_000)]);
    if (agent.exitCode === null && agent.signalCode === null) agent.kill("SIGKILL");
  }
  if (hostId) {
    const ids = (await run("docker", ["ps", "-aq", "--filter", `label=dcc.host=${hostId}`]).catch(() => ({ stdout: "" }))).stdout.split("\n").filter(Boolean);
    if (ids.length) await run("docker", ["rm", "-f", "-v", ...ids]).catch(() => {});
    const nets = (await run("docker", ["network", "ls", "-q", "--filter", `label=dcc.host=${hostId}`]).catch(() => ({ stdout: "" }))).stdout.split("\n").filter(Boolean);
    if (nets.length) await run("docker", ["network", "rm", ...nets]).catch(() => {});
  }
  await c?.stop().catch(() => {});
  await git?.close().catch(() => {});
  rmSync(agentRoot, { recursive: true, force: true });
}

let interrupted = false;
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.once(sig, () => {
    interrupted = true;
    log(`${sig}: cleaning up`);
    cleanUp().finally(() => process.exit(130));
  });
}

const samples = [];
const recoveries = [];
let failed = null;
try {
  git = await startGit(name, { "index.html": "offline bench\n" });
  // --silent-s sets the console's DCC_HOST_SILENT_S (its default otherwise: that is what is measured).
  const silent = values["silent-s"] ? { DCC_HOST_SILENT_S: values["silent-s"] } : {};
  c = await startConsole({ env: { DCC_ALLOW_INSECURE_GIT: "1", DCC_BASE_IMAGE: TEST_IMAGE, ...silent }, quiet: !values.verbose });
  const enrol = await c.mutate("hosts.createEnrollment", {});
  agent = spawn(
    process.execPath,
    [AGENT, "--console", `ws://127.0.0.1:${c.port}/agent`, "--enroll", enrol.token, "--state-dir", join(agentRoot, "state"), "--workspace-root", join(agentRoot, "workspaces"), "--allow-insecure-git"],
    { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root" }, stdio: ["ignore", "pipe", "pipe"] },
  );
  for (const stream of [agent.stdout, agent.stderr]) {
    stream.on("data", (d) => {
      agentOut = (agentOut + d).slice(-64 * 1024);
      if (values.verbose) process.stdout.write(d);
    });
  }
  for (let i = 0; !hostId; i++) {
    hostId = (await c.query("hosts.list")).items.find((h) => h.online)?.id ?? "";
    if (!hostId && i > 300) throw new Error("the agent did not come online within 30 s");
    if (!hostId) await sleep(100);
  }
  log(`agent online as host ${hostId} (pid ${agent.pid})`);

  // What the SSE client has seen of the app.
  const state = { status: null, health: null, hostOnline: null, offlineAt: null };
  events = await openEvents(
    c.url,
    c.auth,
    (m, t) => {
      if (m.app !== name) return;
      if (m.status !== undefined) state.status = m.status;
      if (m.health !== undefined) state.health = m.health;
      if (m.hostOnline !== undefined) {
        state.hostOnline = m.hostOnline;
        if (m.hostOnline === false && state.offlineAt === null) state.offlineAt = t;
      }
    },
    now,
  );
  const until = async (what, pred, timeoutMs) => {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what} (stream state ${JSON.stringify(state)})`);
      await sleep(20);
    }
  };
  const back = () => state.hostOnline !== false && state.status === "RUNNING" && state.health === "reachable";

  const port = await freePort();
  await c.mutate("apps.create", { name, repository: git.url, startCommand: "httpd -f -p $PORT -h /app", port, hostId });
  await until("the app RUNNING and reachable", back, 120_000);
  log(`deployed ${name} on port ${port}; ${RUNS} silences follow`);

  for (let i = 0; i < RUNS && !interrupted; i++) {
    state.offlineAt = null;
    const t0 = now();
    agent.kill("SIGSTOP");
    try {
      await until("the app grey (hostOnline: false) at the SSE client", () => state.offlineAt !== null, 60_000);
    } finally {
      agent.kill("SIGCONT");
    }
    const t1 = state.offlineAt;
    samples.push(t1 - t0);
    const tc = now();
    await until("the app back (hostOnline true, RUNNING, reachable)", back, 60_000);
    recoveries.push(now() - tc);
    log(`run ${i + 1}: grey after ${sec(t1 - t0)}; back ${sec(now() - tc)} after SIGCONT`);
    // The host must be online in the database too before the next silence starts.
    for (let k = 0; k < 300 && !(await c.query("hosts.get", { id: hostId })).online; k++) await sleep(100);
  }
} catch (e) {
  failed = e;
  console.error(`--- agent log (tail)\n${agentOut.slice(-4000)}\n--- console log (tail)\n${c?.output().slice(-4000) ?? ""}`);
} finally {
  await cleanUp();
}

if (samples.length) {
  const s = [...samples].sort((a, b) => a - b);
  const r = [...recoveries].sort((a, b) => a - b);
  console.log("");
  console.log(`host offline detection, ${samples.length} runs${values["silent-s"] ? ` (DCC_HOST_SILENT_S=${values["silent-s"]})` : ""}: agent SIGSTOPped (socket open, silent) → apps.events message with the app hostOnline:false at an SSE client`);
  console.log(`  each run: ${samples.map(sec).join(", ")}`);
  console.log(`  p50 ${sec(quantile(s, 0.5))}  max ${sec(s[s.length - 1])}  min ${sec(s[0])}   (targets: p50 ≤ 10 s, worst ≤ 15 s)`);
  const p50 = quantile(s, 0.5);
  const worst = s[s.length - 1];
  console.log(`  ${p50 <= 10_000 ? "met" : "MISSED"}: p50 ≤ 10 s; ${worst <= 15_000 ? "met" : "MISSED"}: worst ≤ 15 s`);
  console.log(`  back after SIGCONT (hostOnline true, RUNNING, reachable at the client): p50 ${sec(quantile(r, 0.5))}  max ${sec(r[r.length - 1])}`);
  console.log(`  console, agent, Docker engine and this client on one machine (load average ${loadavg().map((x) => x.toFixed(1)).join(" ")})`);
}
if (failed) {
  console.error(`bench-offline failed: ${failed.stack ?? failed}`);
  process.exit(1);
}
process.exit(0);
