// The identity-provider sign-in over plain HTTP (the browser flows are in tests/e2e/oidc.test.ts):
// configuration refused at boot, the authorization request (code + PKCE S256 + state + nonce), a
// callback without its pending-sign-in cookie, and password sign-in switched off while the admin
// API token keeps working.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NO_AUTH, setCookies, startConsole, type RunningConsole } from "../support/console";
import { freePort } from "../support/net";
import { startProvider, type TestProvider } from "../support/oidc-provider";

let c: RunningConsole;
let idp: TestProvider;
const count = async (sql: string) => Number((await c.db().execute(sql)).rows[0].n);

beforeAll(async () => {
  const port = await freePort();
  idp = await startProvider({ consoleUrl: `http://127.0.0.1:${port}`, groups: { alice: ["dcc-admins"] } });
  c = await startConsole({
    port,
    env: {
      DCC_PASSWORD_LOGIN: "off",
      DCC_OIDC_ISSUER: idp.issuer,
      DCC_OIDC_CLIENT_ID: idp.clientId,
      DCC_OIDC_CLIENT_SECRET: idp.clientSecret,
      DCC_OIDC_ADMIN_GROUPS: "dcc-admins",
    },
  });
});
afterAll(async () => {
  await c?.dispose();
  await idp?.close();
});

describe("configuration", () => {
  it("refuses to start with password sign-in off and no provider, or a plain-http provider off loopback", async () => {
    await expect(startConsole({ env: { DCC_PASSWORD_LOGIN: "off" } })).rejects.toThrow(/DCC_PASSWORD_LOGIN=off needs an identity provider/);
    await expect(startConsole({ env: { DCC_OIDC_ISSUER: "http://idp.example.com", DCC_OIDC_CLIENT_ID: "x" } })).rejects.toThrow(/must be an https:\/\/ URL/);
    await expect(startConsole({ env: { DCC_OIDC_ISSUER: "https://idp.example.com" } })).rejects.toThrow(/DCC_OIDC_CLIENT_ID is required/);
  });

  it("prints no set-up token and keeps /setup closed when password sign-in is off", async () => {
    expect(c.output()).not.toContain("setupToken");
    expect(c.output()).toContain("DCC_ADMIN_PASSWORD is ignored");
    const r = await fetch(`${c.url}/setup`, { redirect: "manual" });
    expect([r.status, r.headers.get("location")]).toEqual([302, "/login"]);
  });
});

describe("the authorization request", () => {
  it("sends the browser to the provider with code, PKCE S256, state and nonce, sealed in an httpOnly cookie", async () => {
    const r = await fetch(`${c.url}/auth/oidc/start?next=%2Fhosts`, { redirect: "manual" });
    expect(r.status).toBe(302);
    const to = new URL(r.headers.get("location")!);
    expect(to.origin).toBe(idp.issuer);
    const q = Object.fromEntries(to.searchParams);
    expect(q).toMatchObject({ response_type: "code", client_id: idp.clientId, code_challenge_method: "S256", redirect_uri: `${c.url}/auth/oidc/callback` });
    expect(q.scope.split(" ")).toContain("openid");
    expect(q.code_challenge).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q.state.length).toBeGreaterThanOrEqual(16);
    expect(q.nonce.length).toBeGreaterThanOrEqual(16);
    const line = r.headers.getSetCookie().find((l) => l.startsWith("dcc_oidc="))!;
    expect(line).toMatch(/HttpOnly/);
    expect(line).toMatch(/SameSite=Lax/);
    expect(line).toMatch(/Max-Age=600/);
    const value = decodeURIComponent(setCookies(r).dcc_oidc);
    for (const secret of [q.state, q.nonce, "/hosts"]) expect(value).not.toContain(secret);
  });

  it("refuses a callback without the pending sign-in cookie, and one with a forged cookie", async () => {
    const denied = await count("SELECT count(*) AS n FROM audit_log WHERE action = 'auth.sign_in' AND outcome = 'denied'");
    for (const cookie of [undefined, "dcc_oidc=v1.AAAA.BBBB.CCCC"]) {
      const r = await fetch(`${c.url}/auth/oidc/callback?code=abc&state=def&iss=${encodeURIComponent(idp.issuer)}`, { redirect: "manual", headers: cookie ? { cookie } : {} });
      expect([r.status, r.headers.get("location")]).toEqual([302, "/login?oidc_error=expired"]);
      expect(r.headers.getSetCookie().some((l) => l.includes("dcc_session="))).toBe(false);
    }
    expect(await count("SELECT count(*) AS n FROM sessions")).toBe(0);
    expect(idp.tokenCalls).toBe(0);
    expect(await count("SELECT count(*) AS n FROM audit_log WHERE action = 'auth.sign_in' AND outcome = 'denied'")).toBe(denied + 2);
  });
});

describe("password sign-in off", () => {
  it("refuses every password, even the right one, while the admin API token still works", async () => {
    expect((await c.mutate("users.create", { username: "local", password: "local-user-password-1", role: "admin" })).status).toBe(200);
    const page = await (await fetch(`${c.url}/login`)).text();
    expect(page).toContain("Sign in with 127.0.0.1");
    expect(page).not.toContain('type="password"');
    const r = await fetch(`${c.url}/login`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ username: "local", password: "local-user-password-1" }),
      redirect: "manual",
    });
    expect(r.status).toBe(403);
    expect(await r.text()).toContain("Password sign-in is off");
    expect(r.headers.getSetCookie().some((l) => l.includes("dcc_session="))).toBe(false);
    expect(await count("SELECT count(*) AS n FROM sessions")).toBe(0);
    expect((await c.query("apps.list", undefined, NO_AUTH)).status).toBe(401);
    expect((await c.query("apps.list")).status).toBe(200);
  });
});
