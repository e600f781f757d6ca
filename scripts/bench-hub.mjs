#!/usr/bin/env node
// Hub capacity: N simulated agents, spread over several child processes (this machine allows
// 20,000 open files per process), each authenticating over the real protocol (Ed25519 challenge
// signature, hello with facts and inventory) and sending a usage report about its own app every
// interval. Prints the console's RSS and CPU while it holds them, and connections it dropped.
//
// Honest shortcuts: hosts and their apps are registered straight into the database (as enrolment
// would leave them) instead of enrolling 15,000 tokens; simulated agents do not verify the
// console's challenge signature (the console still verifies theirs).
//
//   npm run build && node scripts/bench-hub.mjs [--agents 15000] [--duration 60] [--interval 5] [--procs N] [--ramp 800]
import { execFileSync, fork, spawn } from "node:child_process";
import { createPrivateKey, generateKeyPairSync, randomBytes, randomUUID, sign } from "node:crypto";
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const SCRIPT = fileURLToPath(import.meta.url);
const ROOT = resolve(dirname(SCRIPT), "..");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

if (process.argv[2] === "--child") await child(process.argv[3]);
else await parent();

// ---------------------------------------------------------------------------------------------
// A child: a few thousand simulated agents.

async function child(shardFile) {
  const { default: WebSocket } = await import("ws");
  const shard = JSON.parse(readFileSync(shardFile, "utf8"));
  const stats = { connected: 0, failed: 0, retries: 0, dropped: 0, reports: 0, closeCodes: {} };
  const sockets = new Set();
  let stopping = false;

  const connect = (a, attempt = 0) => {
    const key = (a.key ??= createPrivateKey(a.privateKeyPem));
    const ws = new WebSocket(shard.url, { perMessageDeflate: false, maxPayload: 1 << 20, handshakeTimeout: 30_000 });
    sockets.add(ws);
    let ready = false;
    let timer = null;
    ws.on("message", (data) => {
      const msg = JSON.parse(data.toString());
      if (msg.type === "challenge") {
        // Same bytes as agent/src/contract/protocol.ts signAuth().
        const sig = sign(null, Buffer.from(`dcc-auth-v1\n${msg.nonce}\n${a.hostId}`), key).toString("base64");
        ws.send(JSON.stringify({ type: "auth", hostId: a.hostId, sig }));
        ws.send(
          JSON.stringify({
            type: "hello",
            protocol: 1,
            agentVersion: "bench",
            facts: { hostname: a.name, cpus: 8, memoryMiB: 65536, docker: { version: "27.0.0", apiVersion: "1.46" }, compose: { variant: "plugin", version: "2.29.0" } },
            inventory: [{ app: a.app, appId: a.appId, commitSha: null, containerState: "running", status: "RUNNING" }],
          }),
        );
      } else if (msg.type === "welcome") {
        ready = true;
        stats.connected++;
        const report = () => {
          if (ws.readyState !== WebSocket.OPEN) return;
          const sample = { app: a.app, cpuPct: Math.round(Math.random() * 1000) / 10, memoryBytes: Math.floor(Math.random() * 2 ** 32), at: new Date().toISOString() };
          ws.send(JSON.stringify({ type: "usage", samples: [sample] }));
          stats.reports++;
        };
        timer = setTimeout(() => {
          report();
          timer = setInterval(report, shard.intervalMs);
        }, Math.random() * shard.intervalMs);
      }
    });
    ws.on("error", () => {});
    ws.on("close", (code) => {
      sockets.delete(ws);
      clearTimeout(timer);
      clearInterval(timer);
      if (stopping) return;
      stats.closeCodes[code] = (stats.closeCodes[code] ?? 0) + 1;
      if (ready) {
        stats.connected--;
        stats.dropped++;
        return;
      }
      // Like the real agent: retry with exponential backoff and full jitter (cap 30 s).
      stats.failed++;
      if (attempt >= 8) return;
      stats.retries++;
      setTimeout(() => {
        stats.failed--;
        connect(a, attempt + 1);
      }, Math.random() * Math.min(30_000, 500 * 2 ** (attempt + 1)));
    });
  };

  shard.agents.forEach((a, i) => setTimeout(() => connect(a), (i * 1000) / shard.ramp));
  const tick = setInterval(() => process.send?.({ stats }), 1000);
  process.on("message", (m) => {
    if (m !== "stop") return;
    stopping = true;
    clearInterval(tick);
    for (const ws of sockets) ws.terminate();
    process.send?.({ stats }, () => process.exit(0));
  });
}

// ---------------------------------------------------------------------------------------------
// The parent: console, database rows, children, measurements.

async function parent() {
  const { values } = parseArgs({
    options: {
      agents: { type: "string", default: "15000" },
      duration: { type: "string", default: "60" },
      interval: { type: "string", default: "5" },
      "console-log": { type: "string" },
      procs: { type: "string" },
      ramp: { type: "string", default: "800" },
    },
  });
  const N = Number(values.agents);
  const DURATION = Number(values.duration);
  const INTERVAL_MS = Number(values.interval) * 1000;
  const PROCS = Number(values.procs ?? Math.max(2, Math.ceil(N / 4000)));
  const RAMP = Number(values.ramp);
  const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim());

  const dir = mkdtempSync(join(tmpdir(), "dcc-bench-hub-"));
  const port = await new Promise((ok) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
  const dbUrl = `file:${join(dir, "dcc.db")}`;
  const kids = [];
  let consoleProc = null;
  process.on("exit", () => {
    for (const k of kids) if (k.exitCode === null) k.kill("SIGKILL");
    if (consoleProc?.exitCode === null) consoleProc.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });
  process.on("SIGINT", () => process.exit(130));

  const log = (msg) => console.log(`[bench-hub ${new Date().toISOString().slice(11, 19)}] ${msg}`);
  log(`${N} agents in ${PROCS} processes, a report every ${INTERVAL_MS / 1000} s, ${DURATION} s steady state, ramp ${RAMP}/s`);

  consoleProc = spawn(process.execPath, [join(ROOT, "build/server.mjs")], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: "production",
      PORT: String(port),
      HOST: "127.0.0.1",
      DATABASE_URL: dbUrl,
      DCC_DATA_DIR: dir,
      DCC_WORKSPACE_ROOT: join(dir, "ws"),
      DCC_LOCAL_AGENT: "0",
      DCC_ADMIN_TOKEN: randomBytes(24).toString("hex"),
      ...(process.env.DCC_HOST_SILENT_S ? { DCC_HOST_SILENT_S: process.env.DCC_HOST_SILENT_S } : {}),
    },
    // --console-log FILE keeps the console's JSON log (why connections were closed, say).
    stdio: ["ignore", values["console-log"] ? openSync(values["console-log"], "w") : "ignore", "inherit"],
  });
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) break;
    } catch {}
    if (i > 300) throw new Error("console did not start");
    await sleep(100);
  }

  // Register the fleet: one host (with its agent's public key) and one app per agent.
  const t0 = Date.now();
  const agents = [];
  for (let i = 0; i < N; i++) {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    agents.push({
      hostId: randomUUID(),
      name: `bench-${i}`,
      app: `bench-app-${i}`,
      appId: randomUUID(),
      publicKey: publicKey.export({ format: "der", type: "spki" }).toString("base64"),
      privateKeyPem: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
    });
  }
  const { createClient } = await import("@libsql/client");
  const db = createClient({ url: dbUrl, timeout: 30_000 });
  for (let i = 0; i < N; i += 2000) {
    const stmts = [];
    for (const a of agents.slice(i, i + 2000)) {
      stmts.push({ sql: "INSERT INTO hosts (id, name, public_key) VALUES (?, ?, ?)", args: [a.hostId, a.name, a.publicKey] });
      stmts.push({
        sql: "INSERT INTO apps (id, name, repository, start_command, port, host_id, status, health) VALUES (?, ?, 'https://example.com/bench/app.git', 'run', 7000, ?, 'RUNNING', 'reachable')",
        args: [a.appId, a.app, a.hostId],
      });
    }
    await db.batch(stmts, "write");
  }
  log(`registered ${N} hosts and apps in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  const stats = new Map();
  const per = Math.ceil(N / PROCS);
  for (let p = 0; p < PROCS; p++) {
    const file = join(dir, `shard-${p}.json`);
    writeFileSync(file, JSON.stringify({ url: `ws://127.0.0.1:${port}/agent`, intervalMs: INTERVAL_MS, ramp: RAMP / PROCS, agents: agents.slice(p * per, (p + 1) * per) }));
    const k = fork(SCRIPT, ["--child", file], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    k.on("message", (m) => stats.set(p, m.stats));
    kids.push(k);
  }
  const total = (f) => [...stats.values()].reduce((s, x) => s + (typeof f === "function" ? f(x) : x[f]), 0);

  const sample = () => {
    const stat = readFileSync(`/proc/${consoleProc.pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${consoleProc.pid}/status`, "utf8"))[1]);
    return { t: Date.now(), ticks, rssMiB: rssKb / 1024 };
  };
  const kidTicks = () =>
    kids.reduce((s, k) => {
      const st = readFileSync(`/proc/${k.pid}/stat`, "utf8");
      const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
      return s + Number(f[11]) + Number(f[12]);
    }, 0);

  // Ramp: until every agent is connected (or it stops making progress).
  const rampStart = sample();
  let last = -1;
  let stuckSince = Date.now();
  for (;;) {
    await sleep(1000);
    const c = total("connected");
    if (c !== last) {
      last = c;
      stuckSince = Date.now();
    }
    const s = sample();
    if (Math.round((s.t - rampStart.t) / 1000) % 5 === 0) log(`ramp: ${c}/${N} connected, ${total("retries")} retries, console RSS ${s.rssMiB.toFixed(0)} MiB`);
    if (c >= N || Date.now() - stuckSince > 30_000) break;
  }
  const rampEnd = sample();
  const connectedAtStart = total("connected");
  log(`ramp done in ${((rampEnd.t - rampStart.t) / 1000).toFixed(1)} s: ${connectedAtStart}/${N} connected; console CPU during ramp ${(((rampEnd.ticks - rampStart.ticks) / CLK_TCK / ((rampEnd.t - rampStart.t) / 1000)) * 100).toFixed(0)} %`);

  // Steady state.
  const droppedBefore = total("dropped");
  const reportsBefore = total("reports");
  const kids0 = kidTicks();
  const s0 = sample();
  let maxRss = s0.rssMiB;
  let maxCpu = 0;
  let prev = s0;
  for (let i = 0; i < DURATION; i++) {
    await sleep(1000);
    const s = sample();
    maxRss = Math.max(maxRss, s.rssMiB);
    maxCpu = Math.max(maxCpu, ((s.ticks - prev.ticks) / CLK_TCK / ((s.t - prev.t) / 1000)) * 100);
    prev = s;
    if (i % 10 === 9) log(`steady ${i + 1}/${DURATION} s: ${total("connected")} connected, RSS ${s.rssMiB.toFixed(0)} MiB`);
  }
  const s1 = sample();
  const secs = (s1.t - s0.t) / 1000;
  const cpu = ((s1.ticks - s0.ticks) / CLK_TCK / secs) * 100;
  const kidsCpu = ((kidTicks() - kids0) / CLK_TCK / secs) * 100;
  const reports = total("reports") - reportsBefore;
  const dropped = total("dropped") - droppedBefore;
  const online = Number((await db.execute("SELECT count(*) AS n FROM hosts WHERE online = 1")).rows[0].n);
  const withUsage = Number((await db.execute("SELECT count(*) AS n FROM apps WHERE usage IS NOT NULL")).rows[0].n);
  db.close();

  for (const k of kids) k.send("stop");
  await sleep(500);
  console.log("");
  console.log(`hub capacity: ${N} simulated agents in ${PROCS} processes, one usage report each every ${INTERVAL_MS / 1000} s`);
  const codes = {};
  for (const st of stats.values()) for (const [k, v] of Object.entries(st.closeCodes)) codes[k] = (codes[k] ?? 0) + v;
  console.log(`  connected: ${total("connected")} of ${N} (gave up: ${total("failed")}, connection attempts retried: ${total("retries")}, close codes seen: ${JSON.stringify(codes)}); hosts online in the database: ${online}`);
  console.log(`  steady state (${secs.toFixed(0)} s): ${(reports / secs).toFixed(0)} reports/s accepted by the console; apps with usage written: ${withUsage}`);
  console.log(`  console RSS: ${s1.rssMiB.toFixed(0)} MiB at the end, ${maxRss.toFixed(0)} MiB peak   (target ≤ 1024 MiB)`);
  console.log(`  console CPU: ${cpu.toFixed(0)} % of one core on average, ${maxCpu.toFixed(0)} % peak second   (target ≤ 100 %)`);
  console.log(`  dropped connections during steady state: ${dropped}`);
  console.log(`  (simulated agents used ${kidsCpu.toFixed(0)} % CPU on the same machine)`);
  consoleProc.kill("SIGTERM");
  await sleep(1000);
  process.exit(0);
}
