// Starts the built console (build/server.mjs) as a real process on a free port with its own
// libSQL file and data dir, and speaks tRPC to it over plain HTTP the way curl would. Every
// console gets a standing admin API token (DCC_ADMIN_TOKEN) that query/mutate send by default,
// and a first admin user (DCC_ADMIN_USER/DCC_ADMIN_PASSWORD) that browser tests sign in as.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createClient, type Client } from "@libsql/client";
import { freePort } from "./net";

export const ROOT = resolve(import.meta.dirname, "../..");

/** The standing admin API token every test console accepts (`Authorization: Bearer …`). */
export const TEST_ADMIN_TOKEN = "test-admin-token-7f3c9a1e5b2d8046c1e9f7a3b5d2c8e0";
export const TEST_ADMIN_USER = "admin";
export const TEST_ADMIN_PASSWORD = "test-admin-password-correct-horse";
/** Pass as `headers` to call without the default admin token (an anonymous caller). */
export const NO_AUTH: Record<string, string> = { authorization: "" };

export interface TrpcReply<T = unknown> {
  status: number;
  body: { result?: { data: T }; error?: { message: string; code: number; data: { code: string; httpStatus: number; path?: string; fields?: Record<string, string> } } };
}

export interface RunningConsole {
  url: string;
  port: number;
  dataDir: string;
  databaseUrl: string;
  proc: ChildProcess;
  /** `{ authorization: "Bearer <DCC_ADMIN_TOKEN>" }`, for raw fetch / SSE calls. */
  authHeaders: Record<string, string>;
  output: () => string;
  db: () => Client;
  /**
   * tRPC calls as the standing admin token. `headers` are added on top; an `authorization` header
   * replaces the default one, and `authorization: ""` (NO_AUTH) sends none at all.
   */
  query<T = unknown>(path: string, input?: unknown, headers?: Record<string, string>): Promise<TrpcReply<T>>;
  mutate<T = unknown>(path: string, input?: unknown, headers?: Record<string, string>): Promise<TrpcReply<T>>;
  /** Signs in over HTTP like a browser would; the session's own query/mutate send its cookie and CSRF token. */
  signIn(username?: string, password?: string): Promise<HttpSession>;
  /** Kills the process (SIGTERM, or SIGKILL when `hard`) and waits for it to exit. */
  stop(hard?: boolean): Promise<void>;
  /** Stops it and removes its data dir. */
  dispose(): Promise<void>;
}

export interface HttpSession {
  cookie: string;
  csrfToken: string;
  query<T = unknown>(path: string, input?: unknown, headers?: Record<string, string>): Promise<TrpcReply<T>>;
  mutate<T = unknown>(path: string, input?: unknown, headers?: Record<string, string>): Promise<TrpcReply<T>>;
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
    DCC_ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    DCC_ADMIN_USER: TEST_ADMIN_USER,
    DCC_ADMIN_PASSWORD: TEST_ADMIN_PASSWORD,
    // No test reaches the public OSV API; the dependency-scan tests give their local server.
    DCC_OSV_URL: "off",
    // No pre-pull of the base image at enrolment unless a test asks for it (no registry here).
    DCC_PREPULL_ON_ENROL: "0",
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
  const adminToken = env.DCC_ADMIN_TOKEN;
  const authHeaders: Record<string, string> = adminToken ? { authorization: `Bearer ${adminToken}` } : {};
  const call = async (method: "GET" | "POST", path: string, input: unknown, extra: Record<string, string> = {}, auth = authHeaders) => {
    const target =
      method === "GET" ? `${url}/api/trpc/${path}${input === undefined ? "" : `?input=${encodeURIComponent(JSON.stringify(input))}`}` : `${url}/api/trpc/${path}`;
    const headers: Record<string, string> = { ...auth };
    for (const [k, v] of Object.entries(extra)) {
      if (k.toLowerCase() !== "authorization") headers[k] = v;
      else if (v) headers.authorization = v;
      else delete headers.authorization;
    }
    const r = await fetch(target, {
      method,
      headers: method === "POST" ? { "content-type": "application/json", ...headers } : headers,
      body: method === "POST" && input !== undefined ? JSON.stringify(input) : undefined,
    });
    return { status: r.status, body: await r.json() };
  };
  const signIn = async (username = TEST_ADMIN_USER, password = TEST_ADMIN_PASSWORD): Promise<HttpSession> => {
    const cookie = await httpSignIn(url, username, password);
    const me = await call("GET", "auth.me", undefined, {}, { cookie });
    const csrfToken = (me.body as TrpcReply<{ csrfToken: string }>["body"]).result?.data.csrfToken;
    if (!csrfToken) throw new Error(`signed in as ${username} but auth.me answered ${me.status}`);
    const auth = { cookie, "x-csrf-token": csrfToken };
    return {
      cookie,
      csrfToken,
      query: (path, input, headers) => call("GET", path, input, headers, auth),
      mutate: (path, input, headers) => call("POST", path, input, headers, auth),
    };
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
    authHeaders,
    output: () => out,
    db: () => (client ??= createClient({ url: databaseUrl })),
    query: (path, input, headers) => call("GET", path, input, headers),
    mutate: (path, input, headers) => call("POST", path, input, headers),
    signIn,
    stop,
    dispose: async () => {
      await stop();
      if (!opts.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The `name=value` pairs a response sets (for replaying them as a Cookie header). */
export function setCookies(r: Response): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of r.headers.getSetCookie()) {
    const [pair] = line.split(";");
    const eq = pair.indexOf("=");
    out[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return out;
}

/** GET /login for the anonymous CSRF cookie and token, then POST the form; returns the session cookie (`name=value`). */
export async function httpSignIn(url: string, username: string, password: string, extraCookie?: string): Promise<string> {
  const r = await postLogin(url, username, password, extraCookie);
  if (r.status !== 302) throw new Error(`sign-in as ${username} answered ${r.status}: ${await r.text()}`);
  const session = Object.entries(setCookies(r)).find(([k]) => k.endsWith("dcc_session"));
  if (!session) throw new Error("sign-in set no session cookie");
  return `${session[0]}=${session[1]}`;
}

/** The raw sign-in POST (redirect not followed), with a valid anonymous CSRF token. */
export async function postLogin(url: string, username: string, password: string, extraCookie?: string): Promise<Response> {
  const page = await fetch(`${url}/login`, { redirect: "manual" });
  const html = await page.text();
  const token = /name="_csrf" value="([^"]+)"/.exec(html)?.[1];
  const csrfCookie = Object.entries(setCookies(page)).find(([k]) => k.endsWith("dcc_csrf"));
  if (!token || !csrfCookie) throw new Error(`no sign-in form at /login (${page.status})`);
  const cookie = [`${csrfCookie[0]}=${csrfCookie[1]}`, extraCookie].filter(Boolean).join("; ");
  return fetch(`${url}/login`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", cookie },
    body: new URLSearchParams({ _csrf: token, username, password, next: "/" }),
    redirect: "manual",
  });
}
