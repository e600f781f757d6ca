// Shared by the benchmark scripts: the built console (build/server.mjs) as a real process on a
// free port with its own data dir and database, an HTTP sign-in like a browser's, an SSE reader
// for /api/trpc/apps.events, and quantiles. Plain Node, no TypeScript, no test framework.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const ADMIN_USER = "admin";
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/**
 * Starts the built console; resolves once /healthz answers. `env` is added to a minimal
 * environment (no local agent unless DCC_LOCAL_AGENT says so). `stop()` ends it and removes its
 * data dir.
 */
export async function startConsole({ env = {}, quiet = true } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "dcc-bench-"));
  const port = await freePort();
  const token = randomBytes(24).toString("hex");
  const password = randomBytes(12).toString("hex");
  const databaseUrl = `file:${join(dir, "dcc.db")}`;
  // BENCH_CONSOLE_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") profiles the console.
  const nodeArgs = (process.env.BENCH_CONSOLE_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const proc = spawn(process.execPath, [...nodeArgs, join(ROOT, "build/server.mjs")], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: process.env.HOME ?? "/root",
      NODE_ENV: "production",
      PORT: String(port),
      HOST: "127.0.0.1",
      DATABASE_URL: databaseUrl,
      DCC_DATA_DIR: dir,
      DCC_WORKSPACE_ROOT: join(dir, "workspaces"),
      DCC_LOCAL_AGENT: "0",
      DCC_ADMIN_TOKEN: token,
      DCC_ADMIN_USER: ADMIN_USER,
      DCC_ADMIN_PASSWORD: password,
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  proc.stdout.on("data", (d) => {
    out += d;
    if (out.length > 1 << 20) out = out.slice(-(1 << 19));
    if (!quiet) process.stdout.write(d);
  });
  proc.stderr.on("data", (d) => {
    out += d;
    if (!quiet) process.stderr.write(d);
  });
  const exited = new Promise((r) => proc.once("exit", r));
  const url = `http://127.0.0.1:${port}`;
  const killOnExit = () => proc.exitCode === null && proc.kill("SIGKILL");
  process.on("exit", killOnExit);
  for (let i = 0; ; i++) {
    if (proc.exitCode !== null) throw new Error(`console exited early (${proc.exitCode}):\n${out}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (i > 300) throw new Error(`console did not answer /healthz within 30 s:\n${out}`);
    await sleep(100);
  }
  const auth = { authorization: `Bearer ${token}` };
  const trpc = async (method, path, input) => {
    const target = method === "GET" && input !== undefined ? `${url}/api/trpc/${path}?input=${encodeURIComponent(JSON.stringify(input))}` : `${url}/api/trpc/${path}`;
    const r = await fetch(target, {
      method,
      headers: method === "POST" ? { ...auth, "content-type": "application/json" } : auth,
      body: method === "POST" ? JSON.stringify(input ?? {}) : undefined,
    });
    const body = await r.json();
    if (!r.ok) throw new Error(`${path} answered ${r.status}: ${JSON.stringify(body.error ?? body)}`);
    return body.result.data;
  };
  return {
    url,
    port,
    dir,
    databaseUrl,
    token,
    password,
    proc,
    auth,
    output: () => out,
    query: (path, input) => trpc("GET", path, input),
    mutate: (path, input) => trpc("POST", path, input),
    async stop() {
      if (proc.exitCode === null) proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
      process.off("exit", killOnExit);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Signs in through the sign-in form over HTTP; returns the session cookie as { name, value }. */
export async function httpSignIn(url, username, password) {
  const page = await fetch(`${url}/login`, { redirect: "manual" });
  const html = await page.text();
  const token = /name="_csrf" value="([^"]+)"/.exec(html)?.[1];
  const csrf = page.headers.getSetCookie().map((l) => l.split(";")[0]).find((p) => p.split("=")[0].endsWith("dcc_csrf"));
  if (!token || !csrf) throw new Error(`no sign-in form at /login (${page.status})`);
  const r = await fetch(`${url}/login`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", cookie: csrf },
    body: new URLSearchParams({ _csrf: token, username, password, next: "/" }),
    redirect: "manual",
  });
  if (r.status !== 302) throw new Error(`sign-in answered ${r.status}`);
  const pair = r.headers.getSetCookie().map((l) => l.split(";")[0]).find((p) => p.split("=")[0].endsWith("dcc_session"));
  if (!pair) throw new Error("sign-in set no session cookie");
  const eq = pair.indexOf("=");
  return { name: pair.slice(0, eq), value: pair.slice(eq + 1) };
}

/**
 * Reads /api/trpc/apps.events as a plain SSE client. `onMessage(change, receivedAtMs)` is called
 * for every data message as soon as its bytes arrive (receivedAtMs from performance.now()).
 * Resolves once the stream's `connected` event has arrived.
 */
export async function openEvents(url, headers, onMessage, now) {
  const ac = new AbortController();
  const res = await fetch(`${url}/api/trpc/apps.events`, { headers: { accept: "text/event-stream", ...headers }, signal: ac.signal });
  if (!res.ok || !res.body) throw new Error(`apps.events answered ${res.status}`);
  let connected;
  const ready = new Promise((r) => (connected = r));
  (async () => {
    const decoder = new TextDecoder();
    let buf = "";
    try {
      for await (const chunk of res.body) {
        const t = now();
        buf += decoder.decode(chunk, { stream: true });
        let idx;
        while ((idx = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, idx);
          buf = buf.slice(idx + 2);
          let event = "message";
          const data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
            else if (line.startsWith("event:")) event = line.slice(6).trim();
          }
          if (event === "connected") connected();
          else if (event === "message" && data.length) {
            try {
              onMessage(JSON.parse(data.join("\n")), t);
            } catch {
              // not JSON: ignore
            }
          }
        }
      }
    } catch {
      // aborted
    }
  })();
  await ready;
  return { close: () => ac.abort() };
}

/** Nearest-rank quantile of an ascending array. */
export function quantile(sorted, q) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

export function summary(samples) {
  const s = [...samples].sort((a, b) => a - b);
  return { n: s.length, p50: quantile(s, 0.5), p95: quantile(s, 0.95), p99: quantile(s, 0.99), max: s[s.length - 1], min: s[0] };
}

export const ms = (x) => (Number.isFinite(x) ? `${x.toFixed(1)} ms` : "n/a");
