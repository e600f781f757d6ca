// The HTTPS gateway with a real Caddy (internal CA, high ports): sign-in in front of an app by
// console ticket, by API token (cached, revocation within the cache time), 401/redirect for
// anyone else, WebSockets through it, credentials stripped before the app.
import { createPrivateKey, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signTicket, tokenHash, type Ticket } from "../../agent/src/contract/gateway";
import { generateSigningKeyPair, publicKeyFromBase64 } from "../../agent/src/contract/protocol";
import { Gateway } from "../../agent/src/gateway/gateway";
import { NO_CADDY, caddyBinary, cookieOf, gwRequest, gwWebSocket, startEchoApp, type EchoApp } from "../support/gateway";
import { freePort } from "../support/net";

const caddy = caddyBinary();
if (!caddy) console.warn(`gateway tests skipped: ${NO_CADDY}`);

async function retryTls<T>(fn: () => Promise<T>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > end || !/SSL|EPROTO|ECONNRESET/.test(String(e))) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

describe.skipIf(!caddy)("gateway (real Caddy)", () => {
  const DOMAIN = "apps.test";
  const HOST_ID = "host-gw-1";
  const keys = generateSigningKeyPair();
  const consoleKey = createPrivateKey(keys.privateKeyPem);
  const otherKey = createPrivateKey(generateSigningKeyPair().privateKeyPem);
  const valid = new Set<string>();
  const TOKEN = `dcc_${randomBytes(16).toString("hex")}`;
  let checks = 0;
  let upgrades = 0;
  let dir: string;
  let gw: Gateway;
  let app: EchoApp;
  let httpsPort: number;
  let base: string;
  let echoCookie = "";

  const ticket = (over: Partial<Ticket> = {}, key = consoleKey) =>
    signTicket({ v: 1, hostId: HOST_ID, app: "echo", sub: "user:u1", exp: Date.now() + 60_000, until: Date.now() + 3600_000, nonce: randomBytes(12).toString("base64url"), ...over }, key);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "dcc-gw-"));
    app = await startEchoApp();
    httpsPort = await freePort();
    const httpPort = await freePort();
    base = `https://echo.${DOMAIN}:${httpsPort}`;
    gw = new Gateway({
      config: { domain: DOMAIN, tls: "internal", httpsPort, httpPort, caddyBin: caddy!, tokenCacheS: 30, idleMinuteMs: 60_000 },
      stateDir: dir,
      consoleOrigin: "http://console.test:3000",
      hostId: () => HOST_ID,
      consoleKey: () => publicKeyFromBase64(keys.publicKey),
      checkToken: async (_app, hash) => (checks++, { ok: valid.has(hash), sub: "token:t1" }),
      access: (_app, upgrade) => (upgrade && upgrades++, { ready: true }),
      log: () => {},
      tokenCacheMs: 1500,
    });
    await gw.start([{ name: "echo", port: app.port }]);
    valid.add(tokenHash(TOKEN));
    // Caddy issues the name's certificate from its internal CA in the background after a load.
    await retryTls(() => gwRequest(`${base}/`));
  });
  afterAll(async () => {
    await gw?.stop();
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("answers 401 to a request without credentials and redirects a browser to the console", async () => {
    const api = await gwRequest(`${base}/data?x=1`, { accept: "application/json" });
    expect(api.status).toBe(401);
    expect(api.headers["www-authenticate"]).toMatch(/Bearer/);
    expect(api.body).not.toContain("bytes");

    const browser = await gwRequest(`${base}/page?x=1`, { accept: "text/html,application/xhtml+xml" });
    expect(browser.status).toBe(302);
    const to = new URL(String(browser.headers.location));
    expect(to.origin).toBe("http://console.test:3000");
    expect(to.pathname).toBe("/gateway/ticket");
    expect(to.searchParams.get("app")).toBe("echo");
    expect(to.searchParams.get("return")).toBe(`${base}/page?x=1`);
    expect(gw.facts()).toMatchObject({ domain: DOMAIN, httpsPort, tls: "internal", running: true });
  });

  it("turns a console ticket into a cookie that reaches the app, without the cookie or the ticket", async () => {
    const landing = await gwRequest(`${base}/.dcc/ticket?t=${ticket()}&r=${encodeURIComponent("/after?y=2")}`);
    expect(landing.status).toBe(302);
    expect(landing.headers.location).toBe("/after?y=2");
    const setCookie = String(landing.headers["set-cookie"]);
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/Secure/);
    const cookie = cookieOf(landing);

    const res = await gwRequest(`${base}/after?y=2`, { cookie: `theme=dark; ${cookie}`, accept: "text/html" });
    expect(res.status).toBe(200);
    const seen = JSON.parse(res.body);
    expect(seen.path).toBe("/after?y=2");
    expect(seen.cookie).toMatch(/^theme=dark;?\s*$/);
    expect(seen.authorization).toBeNull();

    echoCookie = cookie;
    // A name that is no app gets no certificate at all.
    await expect(gwRequest(`https://nope.${DOMAIN}:${httpsPort}/`, { cookie })).rejects.toThrow(/SSL|EPROTO|ECONNRESET/);
  });

  it("refuses a reused, forged, expired or other-app ticket", async () => {
    const t = ticket();
    expect((await gwRequest(`${base}/.dcc/ticket?t=${t}`)).status).toBe(302);
    const again = await gwRequest(`${base}/.dcc/ticket?t=${t}`);
    expect(again.status).toBe(403);
    expect(again.body).toMatch(/already used/);
    const forged = await gwRequest(`${base}/.dcc/ticket?t=${ticket({}, otherKey)}`);
    expect(forged.status).toBe(403);
    expect(forged.body).toMatch(/signature/);
    expect((await gwRequest(`${base}/.dcc/ticket?t=${ticket({ exp: Date.now() - 1 })}`)).body).toMatch(/expired/);
    expect((await gwRequest(`${base}/.dcc/ticket?t=${ticket({ app: "other" })}`)).body).toMatch(/another app/);
    expect((await gwRequest(`${base}/.dcc/ticket?t=${ticket({ hostId: "elsewhere" })}`)).body).toMatch(/another host/);
    // An absolute return URL is not followed (no open redirect).
    const r = await gwRequest(`${base}/.dcc/ticket?t=${ticket()}&r=${encodeURIComponent("//evil.example/")}`);
    expect(r.headers.location).toBe("/");
    // A forged cookie is no cookie.
    const fake = await gwRequest(`${base}/`, { cookie: `dcc_gw=eyJhIjoiZWNobyJ9.${"A".repeat(43)}`, accept: "application/json" });
    expect(fake.status).toBe(401);
  });

  it("lets an API token through without handing it to the app, and stops a revoked one within the cache time", async () => {
    const res = await gwRequest(`${base}/api`, { authorization: `Bearer ${TOKEN}` });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).authorization).toBeNull();
    const bad = await gwRequest(`${base}/api`, { authorization: `Bearer dcc_${"0".repeat(32)}` });
    expect(bad.status).toBe(401);

    const before = checks;
    for (let i = 0; i < 5; i++) expect((await gwRequest(`${base}/api`, { authorization: `Bearer ${TOKEN}` })).status).toBe(200);
    expect(checks - before).toBeLessThanOrEqual(1);

    valid.delete(tokenHash(TOKEN));
    const revokedAt = Date.now();
    let status = 200;
    while (status === 200 && Date.now() - revokedAt < 5000) {
      status = (await gwRequest(`${base}/api`, { authorization: `Bearer ${TOKEN}` })).status;
      if (status === 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(401);
    expect(Date.now() - revokedAt).toBeLessThan(1500 + 1000);
  });

  it("carries a WebSocket through, and refuses one without credentials", async () => {
    const landing = await gwRequest(`${base}/.dcc/ticket?t=${ticket()}`);
    const ws = gwWebSocket(`wss://echo.${DOMAIN}:${httpsPort}/socket`, { cookie: cookieOf(landing) });
    const echoed = await new Promise<string>((resolve, reject) => {
      ws.once("open", () => ws.send("hello through the gateway"));
      ws.once("message", (m) => resolve(m.toString()));
      ws.once("error", reject);
    });
    ws.close();
    expect(echoed).toBe("hello through the gateway");
    // The agent saw it was a WebSocket (a session that keeps an app awake without new requests).
    expect(upgrades).toBeGreaterThan(0);

    const anon = gwWebSocket(`wss://echo.${DOMAIN}:${httpsPort}/socket`);
    const status = await new Promise<number>((resolve) => {
      anon.once("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
      anon.once("open", () => resolve(101));
      anon.once("error", () => resolve(-1));
    });
    anon.terminate();
    expect(status).toBe(401);
  });

  it("streams a large upload to the app and reloads when apps change", async () => {
    const body = "x".repeat(32 * 1024 * 1024);
    const res = await gwRequest(`${base}/upload`, { authorization: `Bearer ${TOKEN}-unknown`, "content-length": String(body.length) }, "POST", body);
    expect(res.status).toBe(401);
    valid.add(tokenHash(TOKEN));
    await new Promise((r) => setTimeout(r, 1600));
    const ok = await gwRequest(`${base}/upload`, { authorization: `Bearer ${TOKEN}`, "content-length": String(body.length) }, "POST", body);
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body).bytes).toBe(body.length);

    const second = await startEchoApp();
    try {
      await gw.setApps([{ name: "echo", port: app.port }, { name: "second", port: second.port }]);
      // Caddy issues the new name's certificate in the background after the reload.
      const r2 = await retryTls(() => gwRequest(`https://second.${DOMAIN}:${httpsPort}/`, { authorization: `Bearer ${TOKEN}` }));
      expect(r2.status).toBe(200);
      // A cookie is bound to the app it was set for.
      expect((await gwRequest(`https://second.${DOMAIN}:${httpsPort}/`, { cookie: echoCookie, accept: "application/json" })).status).toBe(401);
      await gw.setApps([{ name: "echo", port: app.port }]);
      const gone = await gwRequest(`https://second.${DOMAIN}:${httpsPort}/`, { authorization: `Bearer ${TOKEN}` }).then(
        (r) => r.status,
        (e: Error) => e.message,
      );
      expect(String(gone)).toMatch(/^404$|SSL|EPROTO|ECONNRESET/);
    } finally {
      await second.close();
    }
  });
});
