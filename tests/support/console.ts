// Starts the built console (build/server.mjs) as a real process on a free port with its own
// libSQL file and data dir, and speaks tRPC to it over plain HTTP the way curl would.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createClient, type Client } from "@libsql/client";
import { freePort } from "./net";

export const ROOT = resolve(import.meta.dirname, "../..");

export interface TrpcReply<T = unknown> {
  status: number;
  body: { result?: { data: T }; error?: { message: string; code: number; data: { code: string; httpStatus: number; fields?: Record<string, string> } } };
}

export interface RunningConsole {
  url: string;
  port: number;
  dataDir: string;
  databaseUrl: string;
  proc: ChildProcess;
  output: () => string;
  db: () => Client;
  query<T = unknown>(path: string, input?: unknown, headers?: Record<string, string>): Promise<TrpcReply<T>>;
  mutate<T = unknown>(path: string, input?: unknown, headers?: Record<string, string>): Promise<TrpcReply<T>>;
  /** Kills the process (SIGTERM, or SIGKILL when `hard`) and waits for it to exit. */
  stop(hard?: boolean): Promise<void>;
  /** Stops it and removes its data dir. */
  dispose(): Promise<void>;
}

export interface ConsoleOptions {
  env?: Record<string, string>;
  /** Reuse a data dir / database (e.g. to restart a console). */
  dataDir?: string;
  port?: number;
}

export async function startConsole(opts: ConsoleOptions = {}): Promise<RunningConsole> {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), "dcc-console-")));
  const port = opts.port ?? (await freePort());
  const databaseUrl = `file:${join(dataDir, "dcc.db")}`;
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME ?? "/root",
    NODE_ENV: "production",
    PORT: String(port),
    HOST: "127.0.0.1",
    DATABASE_URL: databaseUrl,
    DCC_DATA_DIR: dataDir,
    DCC_WORKSPACE_ROOT: join(dataDir, "workspaces"),
    DCC_LOCAL_AGENT: "0",
    ...opts.env,
  };
  const proc = spawn(process.execPath, [join(ROOT, "build/server.mjs")], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout!.on("data", (d) => (out += d));
  proc.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  const url = `http://127.0.0.1:${port}`;

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`console exited early (${proc.exitCode}):\n${out}`);
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`console did not answer /healthz within 30 s:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  let client: Client | undefined;
  const call = async (method: "GET" | "POST", path: string, input: unknown, headers: Record<string, string> = {}) => {
    const target =
      method === "GET" ? `${url}/api/trpc/${path}${input === undefined ? "" : `?input=${encodeURIComponent(JSON.stringify(input))}`}` : `${url}/api/trpc/${path}`;
    const r = await fetch(target, {
      method,
      headers: method === "POST" ? { "content-type": "application/json", ...headers } : headers,
      body: method === "POST" && input !== undefined ? JSON.stringify(input) : undefined,
    });
    return { status: r.status, body: await r.json() };
  };
  const stop = async (hard = false) => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(hard ? "SIGKILL" : "SIGTERM");
    await exited;
    client?.close();
    client = undefined;
  };
  return {
    url,
    port,
    dataDir,
    databaseUrl,
    proc,
    output: () => out,
    db: () => (client ??= createClient({ url: databaseUrl })),
    query: (path, input, headers) => call("GET", path, input, headers),
    mutate: (path, input, headers) => call("POST", path, input, headers),
    stop,
    dispose: async () => {
      await stop();
      if (!opts.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
