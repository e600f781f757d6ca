// Test helpers for the HTTPS gateway: whether a caddy binary is here, HTTPS requests to
// https://<app>.<domain>:<port> that resolve every name to 127.0.0.1 (like `curl --resolve`) and
// accept Caddy's internal CA, and a tiny upstream app that echoes what reached it (HTTP + WebSocket).
import { execFileSync } from "node:child_process";
import { createServer, type Server } from "node:http";
import { request as httpsRequest } from "node:https";
import WebSocket, { WebSocketServer } from "ws";

/** The caddy binary, or null (gateway tests then skip with this reason). */
export function caddyBinary(): string | null {
  try {
    execFileSync("caddy", ["version"], { stdio: "ignore" });
    return "caddy";
  } catch {
    return null;
  }
}
export const NO_CADDY = "caddy is not installed (bash scripts/test-deps.sh installs Debian's caddy)";

export interface GwResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

const lookup = ((_h: string, opts: { all?: boolean }, cb: (...a: unknown[]) => void) =>
  opts?.all ? cb(null, [{ address: "127.0.0.1", family: 4 }]) : cb(null, "127.0.0.1", 4)) as never;

/** GET (or another method) on https://host:port/path with every name resolved to 127.0.0.1. */
export function gwRequest(url: string, headers: Record<string, string> = {}, method = "GET", body?: string): Promise<GwResponse> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers, servername: u.hostname, rejectUnauthorized: false, lookup, agent: false },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.setTimeout(20_000, () => req.destroy(new Error(`timeout: ${url}`)));
    req.on("error", reject);
    req.end(body);
  });
}

/** A WebSocket to wss://… through the gateway (names resolved to 127.0.0.1, internal CA accepted). */
export function gwWebSocket(url: string, headers: Record<string, string> = {}): WebSocket {
  return new WebSocket(url, { headers, rejectUnauthorized: false, lookup, servername: new URL(url).hostname } as WebSocket.ClientOptions);
}

/** The `name=value` of a Set-Cookie header. */
export function cookieOf(res: GwResponse): string {
  const raw = res.headers["set-cookie"];
  const first = Array.isArray(raw) ? raw[0] : raw;
  if (!first) throw new Error(`no Set-Cookie (status ${res.status}: ${res.body})`);
  return first.split(";")[0];
}

export interface EchoApp {
  port: number;
  server: Server;
  close(): Promise<void>;
}

/** An app on 127.0.0.1 that answers JSON of the request it saw, and echoes WebSocket messages. */
export async function startEchoApp(host = "127.0.0.1", port = 0): Promise<EchoApp> {
  const server = createServer((req, res) => {
    let size = 0;
    req.on("data", (c: Buffer) => (size += c.length));
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ path: req.url, method: req.method, bytes: size, authorization: req.headers.authorization ?? null, cookie: req.headers.cookie ?? null }));
    });
  });
  const wss = new WebSocketServer({ server });
  wss.on("connection", (ws) => ws.on("message", (m, isBinary) => ws.send(m, { binary: isBinary })));
  await new Promise<void>((r) => server.listen(port, host, r));
  return {
    port: (server.address() as { port: number }).port,
    server,
    close: () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export interface MetadataListener {
  address: string;
  close(): Promise<void>;
}

/**
 * A stand-in for a cloud metadata service: an HTTP listener on 169.254.169.254:80 inside its own
 * network namespace, joined to the host by a veth pair (as a VM's link-local metadata route is).
 * Needs root and iproute2; the caller skips when it throws.
 */
export async function startMetadataListener(dir: string): Promise<MetadataListener> {
  const { spawn, execFileSync: run } = await import("node:child_process");
  const { writeFileSync } = await import("node:fs");
  const tag = String(process.pid % 100000);
  const ns = `dccmeta${tag}`;
  const host = `dcm${tag}a`;
  const peer = `dcm${tag}b`;
  const ip = (...args: string[]) => run("ip", args, { stdio: "pipe" });
  const cleanup = () => {
    try {
      ip("link", "del", host);
    } catch {}
    try {
      ip("netns", "del", ns);
    } catch {}
  };
  cleanup();
  ip("netns", "add", ns);
  ip("link", "add", host, "type", "veth", "peer", "name", peer);
  ip("link", "set", peer, "netns", ns);
  ip("addr", "add", "169.254.169.1/24", "dev", host);
  ip("link", "set", host, "up");
  ip("netns", "exec", ns, "ip", "addr", "add", "169.254.169.254/24", "dev", peer);
  ip("netns", "exec", ns, "ip", "link", "set", peer, "up");
  ip("netns", "exec", ns, "ip", "link", "set", "lo", "up");
  ip("netns", "exec", ns, "ip", "route", "add", "default", "via", "169.254.169.1");
  writeFileSync(`${dir}/index.html`, "metadata-secret\n");
  const proc = spawn("ip", ["netns", "exec", ns, "/bin/busybox", "httpd", "-f", "-p", "80", "-h", dir], { stdio: "ignore" });
  await new Promise((r) => setTimeout(r, 300));
  return {
    address: "169.254.169.254",
    close: async () => {
      proc.kill("SIGKILL");
      cleanup();
    },
  };
}
