// In Debian's Chromium against the real console: first-run set-up, sign-in and lockout, session
// fixation, CSRF from another app on the same host, tokens / users / audit pages, and a CSP that
// the app itself passes.
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchBrowser, signIn, waitForHydration } from "../support/browser";
import { ROOT, startConsole, type RunningConsole } from "../support/console";
import { freePort } from "../support/net";

const PASSWORD = "browser-test-password-77";
const shots = join(ROOT, "test-results/screenshots");
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

let c: RunningConsole;
let browser: Browser;
const contexts: BrowserContext[] = [];

async function newPage(): Promise<Page> {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  contexts.push(ctx);
  return ctx.newPage();
}

const count = async (con: RunningConsole, sql: string, args: string[] = []) => Number((await con.db().execute({ sql, args })).rows[0].n);

beforeAll(async () => {
  await mkdir(shots, { recursive: true });
  c = await startConsole();
  browser = await launchBrowser();
  for (const [username, role] of [["bob", "operator"], ["vera", "viewer"]]) {
    expect((await c.mutate("users.create", { username, password: PASSWORD, role })).status).toBe(200);
  }
});
afterAll(async () => {
  for (const ctx of contexts) await ctx.close();
  await browser?.close();
  await c?.dispose();
});

describe("first-run set-up", () => {
  let fresh: RunningConsole;
  beforeAll(async () => {
    fresh = await startConsole({ env: { DCC_ADMIN_PASSWORD: "" } });
  });
  afterAll(async () => {
    await fresh?.dispose();
  });

  it("needs the set-up token from the log, refuses a wrong one, and cannot run twice", async () => {
    const token = /"setupToken":"(dcc_setup_[A-Za-z0-9_-]+)"/.exec(fresh.output())![1];
    const page = await newPage();
    await page.goto(`${fresh.url}/`);
    await expect.poll(() => new URL(page.url()).pathname).toBe("/setup");

    const fill = async (setupToken: string) => {
      await page.getByLabel("Set-up token").fill(setupToken);
      await page.getByLabel("Admin user name").fill("root");
      await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
      await page.getByLabel("Repeat password").fill(PASSWORD);
      await page.getByRole("button", { name: "Create admin" }).click();
    };
    await fill("dcc_setup_not-the-real-one");
    await page.locator('.field-error[data-field="setupToken"]').waitFor();
    expect(await page.locator('.field-error[data-field="setupToken"]').textContent()).toContain("not a valid set-up token");
    expect(await count(fresh, "SELECT count(*) AS n FROM users")).toBe(0);
    await page.screenshot({ path: join(shots, "setup-wrong-token.png") });

    await fill(token);
    await page.waitForURL(`${fresh.url}/`);
    await page.getByRole("heading", { name: "Apps" }).waitFor();
    expect(await page.locator(".user-menu").textContent()).toContain("root");
    expect((await fresh.db().execute("SELECT username, role FROM users")).rows.map((r) => [r.username, r.role])).toEqual([["root", "admin"]]);

    const again = await page.goto(`${fresh.url}/setup`);
    expect(again!.status()).toBe(403);
    await page.getByRole("heading", { name: "Already set up" }).waitFor();
    expect(await page.getByLabel("Set-up token").count()).toBe(0);
  });
});

describe("sign-in", () => {
  it("locks an account after repeated wrong passwords, even against the right one", async () => {
    const page = await newPage();
    await page.goto(`${c.url}/login`);
    for (let i = 0; i < 5; i++) {
      await page.getByLabel("User name").fill("bob");
      await page.getByLabel("Password").fill(`wrong-password-${i}`);
      await page.getByRole("button", { name: "Sign in" }).click();
      await expect.poll(() => page.getByRole("alert").textContent()).toContain("Wrong user name or password");
      await page.waitForFunction(() => !document.querySelector("button[type=submit]")?.hasAttribute("disabled"));
    }
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => page.getByRole("alert").textContent()).toContain("Too many failed sign-ins");
    expect(new URL(page.url()).pathname).toBe("/login");
    expect((await page.context().cookies()).some((k) => k.name.endsWith("dcc_session"))).toBe(false);
    await page.screenshot({ path: join(shots, "sign-in-locked.png") });
  });

  it("does not honour a planted session id; sign-in issues a new one (no fixation)", async () => {
    const page = await newPage();
    const planted = "planted-by-attacker-0123456789abcdefghij";
    await page.context().addCookies([{ name: "dcc_session", value: planted, domain: "127.0.0.1", path: "/" }]);
    await page.goto(`${c.url}/`);
    expect(new URL(page.url()).pathname).toBe("/login");
    await signIn(page, c);
    await page.getByRole("heading", { name: "Apps" }).waitFor();
    const session = (await page.context().cookies()).find((k) => k.name === "dcc_session")!;
    expect(session.value).not.toBe(planted);
    expect(session.httpOnly).toBe(true);
    expect(session.sameSite).toBe("Lax");
    expect(await count(c, "SELECT count(*) AS n FROM sessions WHERE id = ?", [sha256(planted)])).toBe(0);
  });

  it("signs out, and signs out everywhere", async () => {
    const one = await newPage();
    const two = await newPage();
    await signIn(one, c, "vera", PASSWORD);
    await signIn(two, c, "vera", PASSWORD);
    await one.goto(`${c.url}/account`);
    await one.getByRole("button", { name: "Sign out everywhere" }).click();
    await one.waitForURL(/\/login/);
    await two.goto(`${c.url}/hosts`);
    expect(new URL(two.url()).pathname).toBe("/login");

    await signIn(one, c, "vera", PASSWORD);
    await one.getByRole("button", { name: "Sign out" }).click();
    await one.waitForURL(/\/login/);
    await one.goto(`${c.url}/`);
    expect(new URL(one.url()).pathname).toBe("/login");
  });
});

describe("CSRF from another app on the same host", () => {
  let attacker: Server;
  let attackerUrl: string;
  beforeAll(async () => {
    // Same site as the console (same host, another port): SameSite=Lax cookies go along.
    const port = await freePort();
    attackerUrl = `http://127.0.0.1:${port}`;
    attacker = createServer((req, res) => {
      const target = req.url === "/lifecycle" ? `${c.url}/apps/victim-app/action` : `${c.url}/apps/new`;
      const fields =
        req.url === "/lifecycle"
          ? { verb: "deinstall" }
          : { name: "csrf-pwned", repository: "https://github.com/evil/x.git", startCommand: "touch /tmp/pwned", port: "9999" };
      const inputs = Object.entries(fields).map(([k, v]) => `<input name="${k}" value="${v}">`).join("");
      res.setHeader("content-type", "text/html");
      res.end(`<!doctype html><form id="f" method="POST" action="${target}">${inputs}</form><script>document.getElementById("f").submit()</script>`);
    });
    await new Promise<void>((r) => attacker.listen(port, "127.0.0.1", () => r()));
    expect((await c.mutate("apps.create", { name: "victim-app", repository: "https://github.com/example/app.git", startCommand: "run", port: 9800 })).status).toBe(200);
  });
  afterAll(async () => {
    await new Promise((r) => attacker?.close(r));
  });

  for (const [path, what] of [
    ["/create", "an Add App form post"],
    ["/lifecycle", "a deinstall form post"],
  ] as const) {
    it(`refuses ${what} that carries the signed-in admin's cookie (403), changing nothing`, async () => {
      const page = await newPage();
      await signIn(page, c);
      const [response] = await Promise.all([
        page.waitForResponse((r) => r.url().startsWith(c.url) && r.request().method() === "POST"),
        page.goto(`${attackerUrl}${path}`),
      ]);
      // The browser did send the session cookie: the CSRF defence, not a missing sign-in, refused it.
      expect((await response.request().allHeaders()).cookie ?? "").toContain("dcc_session=");
      expect(response.status()).toBe(403);
      expect(await count(c, "SELECT count(*) AS n FROM apps WHERE name = 'csrf-pwned'")).toBe(0);
      expect(await count(c, "SELECT count(*) AS n FROM apps WHERE name = 'victim-app'")).toBe(1);
      expect(await count(c, "SELECT count(*) AS n FROM commands WHERE app_name = 'victim-app' AND action = 'deinstall'")).toBe(0);
    });
  }

  it("the console's own forms still work (they carry the token)", async () => {
    const page = await newPage();
    await signIn(page, c);
    await page.goto(`${c.url}/apps/new`);
    const dialog = page.getByRole("dialog", { name: "Add app" });
    await dialog.getByLabel("Name").fill("own-form");
    await dialog.getByLabel("Git repository").fill("https://github.com/example/webui.git");
    await dialog.getByLabel("Start command").fill("python main.py");
    await dialog.getByLabel("Port").fill("9801");
    await dialog.getByRole("button", { name: "Add app" }).click();
    await page.locator('tr[data-app="own-form"]').waitFor();
  });
});

describe("admin pages", () => {
  let admin: Page;
  beforeAll(async () => {
    admin = await newPage();
    await signIn(admin, c);
  });

  it("creates an API token shown once, which then works with curl, and revokes it", async () => {
    await admin.goto(`${c.url}/settings/tokens`);
    await admin.getByLabel("Name").fill("ci-deploy");
    await admin.getByLabel("Role").selectOption("operator");
    await admin.getByRole("button", { name: "Create token" }).click();
    const shown = admin.getByTestId("new-token").locator("code");
    await shown.waitFor();
    const token = (await shown.textContent())!;
    expect(token).toMatch(/^dcc_[A-Za-z0-9_-]{43}$/);
    await admin.screenshot({ path: join(shots, "token-created.png") });

    const auth = { authorization: `Bearer ${token}` };
    expect((await c.mutate("apps.create", { name: "from-ci", repository: "https://github.com/example/app.git", startCommand: "run", port: 9802 }, auth)).status).toBe(200);
    await admin.reload();
    expect(await admin.content()).not.toContain(token);
    const row = admin.locator("tr", { has: admin.getByRole("rowheader", { name: "ci-deploy" }) });
    expect(await row.textContent()).toContain(token.slice(0, 10));

    await row.getByRole("button", { name: "Revoke ci-deploy" }).click();
    await admin.getByText("Revoked “ci-deploy”").waitFor();
    expect((await c.query("apps.list", undefined, auth)).status).toBe(401);
  });

  it("adds a user whose role limits what they see and may open", async () => {
    await admin.goto(`${c.url}/settings/users`);
    await waitForHydration(admin);
    const form = admin.getByRole("form", { name: "Add a user" });
    await form.getByLabel("User name").fill("newbie");
    await form.getByLabel("Password").fill(PASSWORD);
    await form.getByLabel("Role").selectOption("viewer");
    await form.getByRole("button", { name: "Add user" }).click();
    await admin.locator('tr[data-user="newbie"]').waitFor();

    const viewer = await newPage();
    await signIn(viewer, c, "newbie", PASSWORD);
    const nav = viewer.getByRole("navigation", { name: "Main" });
    expect(await nav.getByRole("link", { name: "Apps" }).count()).toBe(1);
    expect(await nav.getByRole("link", { name: "Users" }).count()).toBe(0);
    expect((await viewer.goto(`${c.url}/settings/users`))!.status()).toBe(403);
    expect((await viewer.goto(`${c.url}/apps/new`))!.status()).toBe(403);
  });

  it("shows the audit log with filters", async () => {
    await admin.goto(`${c.url}/audit`);
    await admin.getByLabel("Action").fill("auth.sign_in");
    await admin.getByLabel("Outcome").selectOption("denied");
    await admin.getByRole("button", { name: "Filter" }).click();
    await admin.waitForURL(/action=auth.sign_in/);
    const rows = admin.locator("tr[data-audit]");
    await rows.first().waitFor();
    expect(await rows.count()).toBeGreaterThanOrEqual(5);
    for (const cell of await admin.locator("tr[data-audit] td:nth-child(5)").allTextContents()) expect(cell).toBe("denied");
    expect(await admin.locator("tr[data-audit] td:nth-child(4)").first().textContent()).toBe("user:bob");
    await admin.screenshot({ path: join(shots, "audit.png") });
  });
});

describe("Content-Security-Policy", () => {
  it("lets the console's own scripts run (client navigation works) and reports no violation", async () => {
    const page = await newPage();
    const violations: string[] = [];
    page.on("console", (m) => {
      if (/Content.Security.Policy|Refused to/i.test(m.text())) violations.push(m.text());
    });
    page.on("pageerror", (e) => violations.push(e.message));
    await signIn(page, c);
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));
    await page.getByRole("link", { name: "Marketplace" }).first().click();
    await page.getByRole("dialog", { name: "Marketplace" }).waitFor();
    // Still the same document: React handled the navigation, so its scripts ran under the CSP.
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(42);
    for (const path of ["/hosts", "/apps/victim-app", "/settings/tokens", "/settings/users", "/audit", "/account"]) {
      await page.goto(`${c.url}${path}`);
      await page.waitForLoadState("load");
      await page.waitForTimeout(150);
    }
    expect(violations).toEqual([]);
    // The policy is live: an injected inline script without the nonce is blocked and reported.
    await page.evaluate(() => {
      const s = document.createElement("script");
      s.textContent = "window.injected = true";
      document.body.appendChild(s);
    });
    expect(await page.evaluate(() => (window as unknown as { injected?: boolean }).injected)).toBeUndefined();
    await expect.poll(() => violations.length).toBeGreaterThan(0);
  });
});
