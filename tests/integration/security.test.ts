// Sign-in, sessions, CSRF, lockout, first run, audit and HTTP hardening against the real console
// process, over plain HTTP as a browser or curl would speak it.
import { createHash } from "node:crypto";
import { rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  httpSignIn,
  NO_AUTH,
  postLogin,
  setCookies,
  startConsole,
  TEST_ADMIN_PASSWORD,
  TEST_ADMIN_TOKEN,
  type RunningConsole,
} from "../support/console";

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
const app = (name: string, port: number) => ({ name, repository: "https://github.com/example/app.git", startCommand: "run", port });
const PASSWORD = "security-test-password-42";

let c: RunningConsole;
let dataDir: string;
const count = async (sql: string, args: (string | number)[] = []) => Number((await c.db().execute({ sql, args })).rows[0].n);

beforeAll(async () => {
  c = await startConsole();
  dataDir = c.dataDir;
  expect((await c.mutate("users.create", { username: "ops", password: PASSWORD, role: "operator" })).status).toBe(200);
});
afterAll(async () => {
  await c?.dispose();
  // `c` may be a restarted console on the same data dir, which dispose() leaves in place.
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** GET a page with a cookie, and pull the session's CSRF token out of the root loader data. */
async function pageCsrf(cookie: string): Promise<string> {
  const html = await (await fetch(`${c.url}/apps/new`, { headers: { cookie } })).text();
  const token = /name="_csrf" value="([^"]+)"/.exec(html)?.[1];
  if (!token) throw new Error("no CSRF field on /apps/new");
  return token;
}

function postForm(path: string, fields: Record<string, string>, headers: Record<string, string>) {
  return fetch(`${c.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(fields),
    redirect: "manual",
  });
}

describe("pages need a signed-in user", () => {
  it("redirects an anonymous page request to /login, keeping where it was going", async () => {
    for (const path of ["/", "/marketplace", "/hosts", "/apps/new", "/settings/tokens", "/settings/notifications", "/audit", "/account"]) {
      const r = await fetch(`${c.url}${path}`, { redirect: "manual" });
      expect(r.status, path).toBe(302);
      expect(r.headers.get("location"), path).toBe(`/login?next=${encodeURIComponent(path)}`);
    }
  });

  it("keeps /healthz and /metrics public", async () => {
    expect((await fetch(`${c.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${c.url}/metrics`)).status).toBe(200);
  });

  it("answers 403 to a signed-in user below the page's role", async () => {
    const cookie = await httpSignIn(c.url, "ops", PASSWORD);
    expect((await fetch(`${c.url}/`, { headers: { cookie } })).status).toBe(200);
    expect((await fetch(`${c.url}/apps/new`, { headers: { cookie } })).status).toBe(200);
    for (const path of ["/settings/tokens", "/settings/users", "/settings/notifications", "/audit"]) {
      expect((await fetch(`${c.url}${path}`, { headers: { cookie }, redirect: "manual" })).status, path).toBe(403);
    }
  });

  it("does not take a token from the URL", async () => {
    const r = await fetch(`${c.url}/api/trpc/apps.list?access_token=${TEST_ADMIN_TOKEN}&token=${TEST_ADMIN_TOKEN}`);
    expect(r.status).toBe(401);
  });
});

describe("session cookies", () => {
  it("are httpOnly, SameSite=Lax, not Secure over plain http, and hold no user data", async () => {
    const r = await postLogin(c.url, "ops", PASSWORD);
    expect(r.status).toBe(302);
    const line = r.headers.getSetCookie().find((l) => l.startsWith("dcc_session="))!;
    expect(line).toMatch(/; HttpOnly/);
    expect(line).toMatch(/; SameSite=Lax/);
    expect(line).not.toMatch(/; Secure/);
    const value = line.split(";")[0].split("=")[1];
    expect(value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // Stored hashed: the database has sha256(value), never the value.
    expect(await count("SELECT count(*) AS n FROM sessions WHERE id = ?", [sha256(value)])).toBe(1);
    expect(await count("SELECT count(*) AS n FROM sessions WHERE id = ?", [value])).toBe(0);
  });

  it("behind a trusted HTTPS proxy are Secure and __Host- prefixed, and the client address comes from X-Forwarded-For", async () => {
    const proxied = await startConsole({ env: { DCC_TRUST_PROXY: "on" } });
    try {
      const headers = { "x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.7" };
      const page = await fetch(`${proxied.url}/login`, { headers });
      const csrf = Object.entries(setCookies(page)).find(([k]) => k.endsWith("dcc_csrf"))!;
      expect(csrf[0]).toBe("__Host-dcc_csrf");
      const token = /name="_csrf" value="([^"]+)"/.exec(await page.text())![1];
      const r = await fetch(`${proxied.url}/login`, {
        method: "POST",
        headers: { ...headers, "content-type": "application/x-www-form-urlencoded", cookie: `${csrf[0]}=${csrf[1]}` },
        body: new URLSearchParams({ _csrf: token, username: "admin", password: TEST_ADMIN_PASSWORD, next: "/" }),
        redirect: "manual",
      });
      expect(r.status).toBe(302);
      const line = r.headers.getSetCookie().find((l) => l.startsWith("__Host-dcc_session="))!;
      expect(line).toMatch(/; Secure/);
      expect(r.headers.get("strict-transport-security")).toMatch(/max-age=/);
      const audit = await proxied.db().execute("SELECT source_address FROM audit_log WHERE action = 'auth.sign_in' AND outcome = 'ok'");
      expect(audit.rows.map((x) => x.source_address)).toEqual(["203.0.113.7"]);
    } finally {
      await proxied.dispose();
    }
  });

  it("without DCC_TRUST_PROXY, X-Forwarded-* are ignored (no spoofed address, no Secure over http)", async () => {
    const r = await fetch(`${c.url}/login`, {
      method: "POST",
      headers: { "x-forwarded-for": "198.51.100.9", "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ username: "ops", password: "x" }),
      redirect: "manual",
    });
    expect(r.status).toBe(403); // no CSRF token either
    const page = await fetch(`${c.url}/login`, { headers: { "x-forwarded-proto": "https" } });
    expect(Object.keys(setCookies(page))).toEqual(["dcc_csrf"]);
  });

  it("keeps the session secret in DCC_DATA_DIR with mode 0600, and sessions survive a restart", async () => {
    const mode = (await stat(join(c.dataDir, "session.key"))).mode & 0o777;
    expect(mode).toBe(0o600);
    const s = await c.signIn("ops", PASSWORD);
    await c.stop();
    const again = await startConsole({ dataDir: c.dataDir, port: c.port });
    try {
      const r = await fetch(`${again.url}/api/trpc/apps.create`, {
        method: "POST",
        headers: { "content-type": "application/json", cookie: s.cookie, "x-csrf-token": s.csrfToken },
        body: JSON.stringify(app("after-restart", 9300)),
      });
      expect(r.status).toBe(200);
    } finally {
      await again.stop();
    }
    c = await startConsole({ dataDir: c.dataDir, port: c.port });
  });
});

describe("session fixation", () => {
  it("never honours a session id the server did not issue, and issues a fresh one at sign-in", async () => {
    const planted = "attacker-chosen-session-id-AAAAAAAAAAAAAAAAAAAA";
    expect((await fetch(`${c.url}/api/trpc/apps.list`, { headers: { cookie: `dcc_session=${planted}` } })).status).toBe(401);
    const r = await postLogin(c.url, "ops", PASSWORD, `dcc_session=${planted}`);
    expect(r.status).toBe(302);
    const issued = setCookies(r).dcc_session;
    expect(issued).toBeDefined();
    expect(issued).not.toBe(planted);
    expect(await count("SELECT count(*) AS n FROM sessions WHERE id = ?", [sha256(planted)])).toBe(0);
    expect((await fetch(`${c.url}/api/trpc/apps.list`, { headers: { cookie: `dcc_session=${planted}` } })).status).toBe(401);
  });

  it("rotates a valid session presented at sign-in: the old id dies, the new one carries the new user", async () => {
    // The attacker's own (viewer) session, planted in the victim's browser.
    expect((await c.mutate("users.create", { username: "mallory", password: PASSWORD, role: "viewer" })).status).toBe(200);
    const attacker = await httpSignIn(c.url, "mallory", PASSWORD);
    const r = await postLogin(c.url, "admin", TEST_ADMIN_PASSWORD, attacker);
    expect(r.status).toBe(302);
    const victim = `dcc_session=${setCookies(r).dcc_session}`;
    expect(victim).not.toBe(attacker);
    // The planted id does not become the admin's session; it is gone altogether.
    expect((await c.query("auth.me", undefined, { ...NO_AUTH, cookie: attacker })).status).toBe(401);
    const me = await c.query<{ id: string; role: string }>("auth.me", undefined, { ...NO_AUTH, cookie: victim });
    expect(me.body.result!.data).toMatchObject({ id: "admin", role: "admin" });
  });
});

describe("CSRF", () => {
  let cookie: string;
  let token: string;
  beforeAll(async () => {
    cookie = await httpSignIn(c.url, "ops", PASSWORD);
    token = await pageCsrf(cookie);
  });
  const mutate = (input: unknown, headers: Record<string, string>) =>
    fetch(`${c.url}/api/trpc/apps.create`, { method: "POST", headers: { "content-type": "application/json", cookie, ...headers }, body: JSON.stringify(input) });

  it("refuses a cookie-authenticated tRPC mutation without the X-CSRF-Token header (403), changing nothing", async () => {
    const r = await mutate(app("csrf-1", 9201), {});
    expect(r.status).toBe(403);
    expect((await r.json()).error.data.code).toBe("FORBIDDEN");
    expect(await count("SELECT count(*) AS n FROM apps WHERE name = 'csrf-1'")).toBe(0);
  });

  it("refuses a wrong token, and a right token sent from another origin", async () => {
    expect((await mutate(app("csrf-2", 9202), { "x-csrf-token": token.slice(0, -2) + "xx" })).status).toBe(403);
    expect((await mutate(app("csrf-2", 9202), { "x-csrf-token": token, origin: "http://127.0.0.1:7860" })).status).toBe(403);
    expect((await mutate(app("csrf-2", 9202), { "x-csrf-token": token, "sec-fetch-site": "same-site" })).status).toBe(403);
    expect(await count("SELECT count(*) AS n FROM apps WHERE name = 'csrf-2'")).toBe(0);
  });

  it("accepts the session's token from the console's own origin", async () => {
    const r = await mutate(app("csrf-ok", 9203), { "x-csrf-token": token, origin: c.url, "sec-fetch-site": "same-origin" });
    expect(r.status).toBe(200);
  });

  it("binds the token to the session: another session's token does not pass", async () => {
    const other = await httpSignIn(c.url, "ops", PASSWORD);
    const otherToken = await pageCsrf(other);
    expect(otherToken).not.toBe(token);
    expect((await mutate(app("csrf-3", 9204), { "x-csrf-token": otherToken })).status).toBe(403);
  });

  it("refuses a form action (Add App) without the _csrf field, and takes it with one", async () => {
    const fields = { name: "csrf-form", repository: "https://github.com/example/app.git", startCommand: "run", port: "9205" };
    const bad = await postForm("/apps/new", fields, { cookie });
    expect(bad.status).toBe(403);
    expect(await count("SELECT count(*) AS n FROM apps WHERE name = 'csrf-form'")).toBe(0);
    const cross = await postForm("/apps/new", { ...fields, _csrf: token }, { cookie, origin: "http://127.0.0.1:7860" });
    expect(cross.status).toBe(403);
    expect(await count("SELECT count(*) AS n FROM apps WHERE name = 'csrf-form'")).toBe(0);
    const good = await postForm("/apps/new", { ...fields, _csrf: token }, { cookie });
    expect(good.status).toBe(302);
    expect(await count("SELECT count(*) AS n FROM apps WHERE name = 'csrf-form'")).toBe(1);
  });

  it("refuses lifecycle and sign-out form posts without the token", async () => {
    expect((await postForm("/apps/csrf-form/action", { verb: "deinstall" }, { cookie })).status).toBe(403);
    expect(await count("SELECT count(*) AS n FROM apps WHERE name = 'csrf-form'")).toBe(1);
    // A cross-site "log out" link/form cannot end the session either.
    expect((await postForm("/logout", { intent: "everywhere" }, { cookie })).status).toBe(403);
    expect((await fetch(`${c.url}/api/trpc/apps.list`, { headers: { cookie } })).status).toBe(200);
  });

  it("protects the sign-in form too (login CSRF)", async () => {
    const r = await postForm("/login", { username: "ops", password: PASSWORD }, {});
    expect(r.status).toBe(403);
    expect(r.headers.getSetCookie().some((l) => l.includes("dcc_session="))).toBe(false);
  });

  it("asks nothing of Bearer calls (no cookie, no CSRF token)", async () => {
    expect((await c.mutate("apps.create", app("bearer-ok", 9206))).status).toBe(200);
  });
});

describe("brute-force lockout", () => {
  it("locks an account after 5 failures, even for the right password, and keeps the lock across a restart", async () => {
    const lab = await startConsole();
    try {
      expect((await lab.mutate("users.create", { username: "victim", password: PASSWORD, role: "viewer" })).status).toBe(200);
      for (let i = 0; i < 5; i++) expect((await postLogin(lab.url, "victim", `wrong-${i}-password`)).status).toBe(401);
      const locked = await postLogin(lab.url, "victim", PASSWORD);
      expect(locked.status).toBe(429);
      expect(await locked.text()).toContain("Too many failed sign-ins");
      expect(locked.headers.getSetCookie().some((l) => l.includes("dcc_session="))).toBe(false);
      // Another account from the same address is not locked by this.
      expect((await postLogin(lab.url, "admin", TEST_ADMIN_PASSWORD)).status).toBe(302);

      await lab.stop();
      const again = await startConsole({ dataDir: lab.dataDir, port: lab.port });
      try {
        expect((await postLogin(again.url, "victim", PASSWORD)).status).toBe(429);
        const audit = await again.db().execute("SELECT outcome, detail FROM audit_log WHERE action = 'auth.sign_in' AND target = 'user:victim' ORDER BY id");
        expect(audit.rows.map((x) => x.outcome)).toEqual(["denied", "denied", "denied", "denied", "denied", "denied", "denied"]);
        expect(String(audit.rows[6].detail)).toContain("locked");
      } finally {
        await again.dispose();
      }
    } finally {
      await lab.dispose();
    }
  });

  it("locks an address after 20 failures across any user names", async () => {
    const lab = await startConsole();
    try {
      expect((await lab.mutate("users.create", { username: "fresh", password: PASSWORD, role: "viewer" })).status).toBe(200);
      for (let i = 0; i < 20; i++) expect((await postLogin(lab.url, `spray-${i}`, "password123456")).status).toBe(401);
      expect((await postLogin(lab.url, "fresh", PASSWORD)).status).toBe(429);
    } finally {
      await lab.dispose();
    }
  });
});

describe("first run", () => {
  let first: RunningConsole;
  beforeAll(async () => {
    first = await startConsole({ env: { DCC_ADMIN_PASSWORD: "" } });
  });
  afterAll(async () => {
    await first?.dispose();
  });
  const setupToken = () => /"setupToken":"(dcc_setup_[A-Za-z0-9_-]+)"/.exec(first.output())?.[1];

  /** A valid anonymous CSRF pair: from the set-up form, or (once set up) from the sign-in form. */
  async function anonCsrf(): Promise<{ cookie: string; token: string }> {
    for (const path of ["/setup", "/login"]) {
      const r = await fetch(`${first.url}${path}`, { redirect: "manual" });
      const token = /name="_csrf" value="([^"]+)"/.exec(await r.text())?.[1];
      const cookie = Object.entries(setCookies(r)).find(([k]) => k.endsWith("dcc_csrf"));
      if (token && cookie) return { cookie: `${cookie[0]}=${cookie[1]}`, token };
    }
    throw new Error("no form with a CSRF token");
  }

  async function postSetup(fields: Record<string, string>) {
    const { cookie, token } = await anonCsrf();
    return fetch(`${first.url}/setup`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie },
      body: new URLSearchParams({ _csrf: token, ...fields }),
      redirect: "manual",
    });
  }
  const setupAudit = async () =>
    (await first.db().execute("SELECT outcome, detail FROM audit_log WHERE action = 'setup.admin' ORDER BY id")).rows.map((r) => [r.outcome, JSON.parse(String(r.detail))]);

  it("prints a one-time set-up token, stores only its hash, and has no user yet", async () => {
    const token = setupToken();
    expect(token).toBeDefined();
    const rows = await first.db().execute("SELECT token_hash FROM setup_tokens");
    expect(rows.rows.map((r) => r.token_hash)).toEqual([sha256(token!)]);
    expect(Number((await first.db().execute("SELECT count(*) AS n FROM users")).rows[0].n)).toBe(0);
    const r = await fetch(`${first.url}/login`, { redirect: "manual" });
    expect(r.headers.get("location")).toBe("/setup");
  });

  it("refuses set-up without the right token", async () => {
    const r = await postSetup({ setupToken: "dcc_setup_guessed", username: "root", password: PASSWORD, confirm: PASSWORD });
    expect(r.status).toBe(403);
    expect(await r.text()).toContain("not a valid set-up token");
    expect(Number((await first.db().execute("SELECT count(*) AS n FROM users")).rows[0].n)).toBe(0);
    expect(await setupAudit()).toEqual([["denied", { reason: "wrong set-up token" }]]);
  });

  it("creates the first admin with the token, then refuses any second set-up", async () => {
    const ok = await postSetup({ setupToken: setupToken()!, username: "root", password: PASSWORD, confirm: PASSWORD });
    expect(ok.status).toBe(302);
    expect(ok.headers.getSetCookie().some((l) => l.startsWith("dcc_session="))).toBe(true);
    const users = await first.db().execute("SELECT username, role FROM users");
    expect(users.rows.map((u) => [u.username, u.role])).toEqual([["root", "admin"]]);

    const again = await postSetup({ setupToken: setupToken()!, username: "root2", password: PASSWORD, confirm: PASSWORD });
    expect(again.status).toBe(403);
    expect((await setupAudit()).at(-1)).toEqual(["denied", { reason: "already set up" }]);
    expect((await fetch(`${first.url}/setup`)).status).toBe(403);
    expect(Number((await first.db().execute("SELECT count(*) AS n FROM users")).rows[0].n)).toBe(1);
  });
});

describe("audit log", () => {
  it("records sign-ins (success and failure), token create/revoke and app create with actor, target, address and outcome", async () => {
    await postLogin(c.url, "ops", "definitely-wrong-pw");
    const s = await c.signIn("ops", PASSWORD);
    const made = await c.mutate<{ token: string; item: { id: string } }>("tokens.create", { name: "ci", role: "operator" });
    const id = made.body.result!.data.item.id;
    await c.mutate("tokens.revoke", { id });
    await s.mutate("apps.create", app("audited", 9400));

    const rows = async (action: string, target: string) =>
      (await c.db().execute({ sql: "SELECT actor, target, outcome, source_address, at FROM audit_log WHERE action = ? AND target = ? ORDER BY id", args: [action, target] })).rows.map((r) => ({ ...r }));
    const signIns = await rows("auth.sign_in", "user:ops");
    expect(signIns.some((r) => r.outcome === "denied" && r.actor === "anonymous:sign-in")).toBe(true);
    expect(signIns.some((r) => r.outcome === "ok" && r.actor === "user:ops")).toBe(true);
    for (const r of signIns) expect(r.source_address).toBe("127.0.0.1");
    expect(await rows("token.create", `token:${id}`)).toMatchObject([{ actor: "token:admin-env", outcome: "ok" }]);
    expect(await rows("token.revoke", `token:${id}`)).toMatchObject([{ actor: "token:admin-env", outcome: "ok" }]);
    expect(await rows("app.create", "audited")).toMatchObject([{ actor: "user:ops", outcome: "ok", source_address: "127.0.0.1" }]);
    expect((await rows("app.create", "audited"))[0].at).toMatch(/^\d{4}-\d{2}-\d{2}T/);
  });

  it("keeps secrets out of the audit log and the console's output", async () => {
    const made = await c.mutate<{ token: string }>("tokens.create", { name: "secret-check", role: "viewer" });
    const token = made.body.result!.data.token;
    await c.mutate("users.create", { username: "pw-check", password: "hunter2-hunter2-hunter2", role: "viewer" });
    const dump = JSON.stringify((await c.db().execute("SELECT * FROM audit_log")).rows);
    for (const secret of [token, "hunter2-hunter2-hunter2", TEST_ADMIN_PASSWORD, TEST_ADMIN_TOKEN, PASSWORD]) {
      expect(dump).not.toContain(secret);
      expect(c.output()).not.toContain(secret);
    }
    // Tokens are stored as SHA-256 only.
    expect(await count("SELECT count(*) AS n FROM api_tokens WHERE token_hash = ?", [sha256(token)])).toBe(1);
    expect(JSON.stringify((await c.db().execute("SELECT * FROM api_tokens")).rows)).not.toContain(token);
    const hash = (await c.db().execute("SELECT password_hash FROM users WHERE username = 'pw-check'")).rows[0].password_hash;
    expect(String(hash)).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  });

  it("filters audit.list by actor, action, target, outcome and time, and pages with a cursor", async () => {
    type Page = { items: { id: number; actor: string; action: string; target: string | null; outcome: string; at: string }[]; nextCursor: number | null };
    const byAction = await c.query<Page>("audit.list", { action: "token.*" });
    expect(byAction.body.result!.data.items.length).toBeGreaterThanOrEqual(3);
    for (const e of byAction.body.result!.data.items) expect(e.action).toMatch(/^token\./);
    const denied = await c.query<Page>("audit.list", { outcome: "denied", action: "auth.sign_in" });
    expect(denied.body.result!.data.items.length).toBeGreaterThanOrEqual(1);
    for (const e of denied.body.result!.data.items) expect(e.outcome).toBe("denied");
    const actor = await c.query<Page>("audit.list", { actor: "user:ops", target: "audited" });
    expect(actor.body.result!.data.items.map((e) => e.action)).toEqual(["app.create"]);
    const future = await c.query<Page>("audit.list", { since: new Date(Date.now() + 3600_000).toISOString() });
    expect(future.body.result!.data.items).toEqual([]);
    const past = await c.query<Page>("audit.list", { until: "2000-01-01T00:00:00Z" });
    expect(past.body.result!.data.items).toEqual([]);

    const all = await c.query<Page>("audit.list", { limit: 200 });
    const seen: number[] = [];
    let cursor: number | undefined;
    for (let i = 0; i < 100; i++) {
      const page = await c.query<Page>("audit.list", { limit: 7, ...(cursor ? { cursor } : {}) });
      seen.push(...page.body.result!.data.items.map((e) => e.id));
      if (!page.body.result!.data.nextCursor) break;
      cursor = page.body.result!.data.nextCursor;
    }
    expect(seen).toEqual(all.body.result!.data.items.map((e) => e.id));
    expect(new Set(seen).size).toBe(seen.length);
    expect((await c.query("audit.list", { actor: 5 })).status).toBe(400);
  });

  it("is append-only: the database refuses UPDATE and DELETE of audit rows", async () => {
    const before = await count("SELECT count(*) AS n FROM audit_log");
    await expect(c.db().execute("UPDATE audit_log SET outcome = 'ok' WHERE outcome = 'denied'")).rejects.toThrow(/append-only/);
    await expect(c.db().execute("DELETE FROM audit_log")).rejects.toThrow(/append-only/);
    expect(await count("SELECT count(*) AS n FROM audit_log")).toBe(before);
    expect(await count("SELECT count(*) AS n FROM audit_log WHERE outcome = 'denied'")).toBeGreaterThan(0);
  });
});

describe("HTTP hardening", () => {
  it("sends security headers and a nonce-based CSP that covers every inline script", async () => {
    const cookie = await httpSignIn(c.url, "ops", PASSWORD);
    const r = await fetch(`${c.url}/`, { headers: { cookie } });
    expect(r.status).toBe(200);
    const csp = r.headers.get("content-security-policy")!;
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("object-src 'none'");
    expect(csp).not.toContain("'unsafe-inline' ");
    expect(csp).not.toMatch(/script-src[^;]*unsafe/);
    const nonce = /script-src 'self' 'nonce-([A-Za-z0-9+/=]+)'/.exec(csp)![1];
    const scripts = (await r.text()).match(/<script\b[^>]*>/g) ?? [];
    expect(scripts.length).toBeGreaterThan(0);
    for (const tag of scripts) expect(tag).toContain(`nonce="${nonce}"`);
    expect(r.headers.get("x-content-type-options")).toBe("nosniff");
    expect(r.headers.get("referrer-policy")).toBe("no-referrer");
    expect(r.headers.get("x-frame-options")).toBe("DENY");
    expect(r.headers.get("cache-control")).toBe("no-store");
    // A fresh nonce per response.
    const again = (await fetch(`${c.url}/login`)).headers.get("content-security-policy")!;
    expect(again).not.toContain(nonce);
    for (const path of ["/healthz", "/api/trpc/apps.list"]) {
      expect((await fetch(`${c.url}${path}`)).headers.get("x-content-type-options"), path).toBe("nosniff");
    }
  });

  it("refuses bodies over 1 MiB (413) on the API and on forms, and bodies of unknown length (411)", async () => {
    const big = JSON.stringify({ ...app("big", 9500), startCommand: "x".repeat(1024 * 1024 + 10) });
    const api = await fetch(`${c.url}/api/trpc/apps.create`, { method: "POST", headers: { "content-type": "application/json", ...c.authHeaders }, body: big });
    expect(api.status).toBe(413);
    const form = await fetch(`${c.url}/apps/new`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", ...c.authHeaders },
      body: "name=big&startCommand=" + "x".repeat(1024 * 1024 + 10),
    });
    expect(form.status).toBe(413);
    const stream = new ReadableStream({
      start(ctrl) {
        ctrl.enqueue(new TextEncoder().encode(JSON.stringify(app("chunked", 9501))));
        ctrl.close();
      },
    });
    const chunked = await fetch(`${c.url}/api/trpc/apps.create`, {
      method: "POST",
      headers: { "content-type": "application/json", ...c.authHeaders },
      body: stream,
      duplex: "half",
    } as RequestInit);
    expect(chunked.status).toBe(411);
    expect(await count("SELECT count(*) AS n FROM apps WHERE name IN ('big', 'chunked')")).toBe(0);
  });
});
