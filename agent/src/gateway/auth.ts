// The gateway's forward-auth endpoint, served by the agent on loopback. Caddy asks GET /verify
// for every request to an app (X-Dcc-App names it); the answer is 2xx (let it through), 401
// (no or bad credentials, non-browser), a redirect to the console's ticket page (a browser), or
// the waking-up page of a sleeping app. /.dcc/ticket turns a console-signed ticket into a
// host-scoped cookie (HMAC with the agent's own key), so access holds while the console is down.
import { createHmac, randomBytes, timingSafeEqual, type KeyObject } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { SESSION_MAX_MS, TOKEN_CACHE_MS, tokenHash, verifyTicket } from "../contract/gateway";
import { AppNameSchema } from "../contract/validation";
import type { Logger } from "../log";
import { GATEWAY_COOKIE } from "./caddy-config";

export interface TokenVerdict {
  ok: boolean;
  sub?: string;
}

/** What the sleep/wake part says about a request that passed the sign-in check. */
export type AccessVerdict = { ready: true } | { ready: false; message: string };

export interface GatewayAuthOptions {
  hostId: () => string | null;
  consoleKey: () => KeyObject | null;
  /** http(s)://console — where browsers go for a ticket. */
  consoleOrigin: string;
  /** The gateway's public origin suffix, e.g. `.apps.example.com:8443`, to rebuild return URLs. */
  publicSuffix: string;
  cookieKey: Buffer;
  /** Asks the console about a token by its hash; throws when the console cannot be asked. */
  checkToken: (app: string, hash: string) => Promise<TokenVerdict>;
  /** The apps the gateway serves. */
  known: (app: string) => boolean;
  /** Called for every request that passed the check: records use, wakes a sleeping app. */
  access: (app: string, upgrade: boolean) => AccessVerdict;
  log: Logger;
  now?: () => number;
  tokenCacheMs?: number;
}

export class GatewayAuth {
  private server: Server | null = null;
  private readonly cache = new Map<string, { verdict: TokenVerdict; at: number }>();
  private readonly inflight = new Map<string, Promise<TokenVerdict>>();
  /** Tickets already exchanged (one cookie per ticket), until they expire. */
  private readonly used = new Map<string, number>();

  constructor(private readonly o: GatewayAuthOptions) {}

  private now() {
    return (this.o.now ?? Date.now)();
  }

  async listen(): Promise<string> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((e) => {
        this.o.log("error", "gateway auth failed", { error: (e as Error).message });
        if (!res.headersSent) send(res, 500, "The gateway could not check this request.\n");
      });
    });
    this.server.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    const { port } = this.server.address() as { port: number };
    return `127.0.0.1:${port}`;
  }

  close() {
    this.server?.close();
    this.server?.closeAllConnections();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const appHeader = String(req.headers["x-dcc-app"] ?? "");
    const app = AppNameSchema.safeParse(appHeader);
    if (!app.success || !this.o.known(app.data)) return send(res, 404, "No app at this address.\n");
    const url = new URL(req.url ?? "/", "http://gateway");
    if (url.pathname === "/.dcc/ticket") return this.exchange(app.data, url, res);
    if (url.pathname !== "/verify") return send(res, 404, "Not found.\n");

    const who = await this.identify(app.data, req);
    if (who.kind === "error") return send(res, who.status, who.text, who.headers);
    if (who.kind === "none") {
      const browser = /text\/html/.test(String(req.headers.accept ?? "")) && String(req.headers["x-forwarded-method"] ?? "GET") === "GET";
      if (!browser) return send(res, 401, "Sign in to the console or send an API token (Authorization: Bearer).\n", { "www-authenticate": 'Bearer realm="dcc-gateway"' });
      const back = `https://${app.data}${this.o.publicSuffix}${localPath(String(req.headers["x-forwarded-uri"] ?? "/"))}`;
      const to = `${this.o.consoleOrigin}/gateway/ticket?app=${encodeURIComponent(app.data)}&return=${encodeURIComponent(back)}`;
      res.writeHead(302, { location: to, "cache-control": "no-store" });
      return void res.end();
    }
    const verdict = this.o.access(app.data, /websocket/i.test(String(req.headers.upgrade ?? "")));
    if (!verdict.ready) {
      const browser = /text\/html/.test(String(req.headers.accept ?? ""));
      if (!browser) return send(res, 503, `${verdict.message}\n`, { "retry-after": "5" });
      res.writeHead(503, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store", "retry-after": "5" });
      return void res.end(wakingPage(app.data, verdict.message));
    }
    res.writeHead(200, { "x-dcc-user": who.sub });
    res.end();
  }

  private async identify(
    app: string,
    req: IncomingMessage,
  ): Promise<{ kind: "ok"; sub: string } | { kind: "none" } | { kind: "error"; status: number; text: string; headers?: Record<string, string> }> {
    const fromCookie = this.readCookie(app, String(req.headers.cookie ?? ""));
    if (fromCookie) return { kind: "ok", sub: fromCookie };
    const auth = String(req.headers.authorization ?? "");
    const bearer = /^Bearer ([\x21-\x7e]{8,512})$/.exec(auth);
    if (auth && !bearer) return { kind: "error", status: 401, text: "Malformed Authorization header.\n", headers: { "www-authenticate": 'Bearer realm="dcc-gateway"' } };
    if (!bearer) return { kind: "none" };
    let verdict: TokenVerdict;
    try {
      verdict = await this.token(app, tokenHash(bearer[1]));
    } catch (e) {
      return { kind: "error", status: 503, text: `The console cannot check API tokens right now: ${(e as Error).message}\n`, headers: { "retry-after": "5" } };
    }
    if (!verdict.ok) return { kind: "error", status: 401, text: "Invalid or revoked API token.\n", headers: { "www-authenticate": 'Bearer realm="dcc-gateway", error="invalid_token"' } };
    return { kind: "ok", sub: verdict.sub ?? "token" };
  }

  /** Cached for tokenCacheMs (answers of both kinds); concurrent checks of one token share one question. */
  private async token(app: string, hash: string): Promise<TokenVerdict> {
    const ttl = this.o.tokenCacheMs ?? TOKEN_CACHE_MS;
    const hit = this.cache.get(hash);
    if (hit && this.now() - hit.at < ttl) return hit.verdict;
    let p = this.inflight.get(hash);
    if (!p) {
      p = this.o.checkToken(app, hash).finally(() => this.inflight.delete(hash));
      this.inflight.set(hash, p);
    }
    const verdict = await p;
    this.cache.set(hash, { verdict, at: this.now() });
    if (this.cache.size > 10_000) for (const [k, v] of this.cache) if (this.now() - v.at >= ttl) this.cache.delete(k);
    return verdict;
  }

  private exchange(app: string, url: URL, res: ServerResponse) {
    const key = this.o.consoleKey();
    const hostId = this.o.hostId();
    if (!key || !hostId) return send(res, 503, "This host is not enrolled yet.\n");
    const raw = url.searchParams.get("t") ?? "";
    const now = this.now();
    const check = verifyTicket(raw, key, { hostId, app, now });
    if (!check.ok) return send(res, 403, `Access refused: ${check.reason}. Open the app from the console again.\n`);
    for (const [k, exp] of this.used) if (exp <= now) this.used.delete(k);
    if (this.used.has(check.ticket.nonce)) return send(res, 403, "Access refused: this ticket was already used. Open the app from the console again.\n");
    this.used.set(check.ticket.nonce, check.ticket.exp);
    const until = Math.min(check.ticket.until, now + SESSION_MAX_MS);
    const cookie = this.makeCookie(app, check.ticket.sub, until);
    this.o.log("info", "gateway access granted", { app, sub: check.ticket.sub, until: new Date(until).toISOString() });
    res.writeHead(302, {
      location: localPath(url.searchParams.get("r") ?? "/"),
      "cache-control": "no-store",
      "set-cookie": `${GATEWAY_COOKIE}=${cookie}; Path=/; Max-Age=${Math.floor((until - now) / 1000)}; HttpOnly; Secure; SameSite=Lax`,
    });
    res.end();
  }

  makeCookie(app: string, sub: string, until: number): string {
    const body = Buffer.from(JSON.stringify({ a: app, s: sub, e: until })).toString("base64url");
    return `${body}.${this.mac(body)}`;
  }

  private mac(body: string) {
    return createHmac("sha256", this.o.cookieKey).update(`dcc-gateway-cookie-v1\n${body}`).digest("base64url");
  }

  private readCookie(app: string, header: string): string | null {
    for (const part of header.split(/;\s*/)) {
      if (!part.startsWith(`${GATEWAY_COOKIE}=`)) continue;
      const m = /^([A-Za-z0-9_-]{1,1000})\.([A-Za-z0-9_-]{43})$/.exec(part.slice(GATEWAY_COOKIE.length + 1));
      if (!m) continue;
      const want = Buffer.from(this.mac(m[1]));
      const got = Buffer.from(m[2]);
      if (want.length !== got.length || !timingSafeEqual(want, got)) continue;
      try {
        const c = JSON.parse(Buffer.from(m[1], "base64url").toString("utf8")) as { a: string; s: string; e: number };
        // A cookie is bound to the app whose name it was set on, and to its expiry.
        if (c.a === app && typeof c.e === "number" && c.e > this.now() && typeof c.s === "string") return c.s;
      } catch {
        continue;
      }
    }
    return null;
  }
}

export const newCookieKey = () => randomBytes(32);

/** A local path only: never an absolute URL (no open redirect through the ticket landing). */
function localPath(p: string): string {
  return /^\/(?![/\\])[\x21-\x7e]*$/.test(p) ? p : "/";
}

function send(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}) {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", ...headers });
  res.end(text);
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function wakingPage(app: string, message: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="3"><title>${escapeHtml(app)} is waking up</title>
<style>body{font:16px system-ui,sans-serif;display:grid;place-items:center;height:90vh;color:#333}</style></head>
<body><main><h1>${escapeHtml(app)} is waking up</h1><p>${escapeHtml(message)}</p><p>This page reloads by itself once the app answers.</p></main></body></html>\n`;
}
