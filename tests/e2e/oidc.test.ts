// Sign-in with a real OpenID Connect provider (oidc-provider on loopback) in Debian's Chromium,
// with password sign-in off: the first admin arrives through the provider by group, a viewer by
// group, roles follow the groups at every sign-in, sign-out ends the provider's session too, and
// every forged or broken answer (tampered state, wrong nonce, wrong audience, wrong issuer, an
// expired or wrongly signed ID token) is refused with no session created.
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchBrowser, waitForHydration } from "../support/browser";
import { ROOT, startConsole, type RunningConsole } from "../support/console";
import { freePort } from "../support/net";
import { startProvider, type Tamper, type TestProvider } from "../support/oidc-provider";

const shots = join(ROOT, "test-results/screenshots");
let c: RunningConsole;
let idp: TestProvider;
let browser: Browser;
const contexts: BrowserContext[] = [];

async function newPage(): Promise<Page> {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  contexts.push(ctx);
  return ctx.newPage();
}
const count = async (sql: string, args: string[] = []) => Number((await c.db().execute({ sql, args })).rows[0].n);

/** From the console's sign-in page through the provider's login (and consent) pages. */
async function providerSignIn(page: Page, login: string): Promise<void> {
  await page.goto(`${c.url}/login`);
  await waitForHydration(page);
  await page.getByRole("link", { name: "Sign in with Test IdP" }).click();
  await page.waitForURL((u) => u.origin === idp.issuer);
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill("any-password");
  await page.getByRole("button", { name: "Sign-in" }).click();
  // Consent once per browser; afterwards the provider sends the browser straight back.
  await page.waitForURL((u) => u.origin === c.url || /\/interaction\//.test(u.pathname));
  if (new URL(page.url()).origin !== c.url) {
    await page.getByRole("button", { name: "Continue" }).click();
    await page.waitForURL((u) => u.origin === c.url);
  }
}

beforeAll(async () => {
  await mkdir(shots, { recursive: true });
  const port = await freePort();
  idp = await startProvider({
    consoleUrl: `http://127.0.0.1:${port}`,
    groups: { alice: ["dcc-admins", "staff"], victor: ["staff"], olga: ["dcc-operators"] },
  });
  c = await startConsole({
    port,
    env: {
      DCC_PASSWORD_LOGIN: "off",
      DCC_ADMIN_PASSWORD: "",
      DCC_OIDC_ISSUER: idp.issuer,
      DCC_OIDC_CLIENT_ID: idp.clientId,
      DCC_OIDC_CLIENT_SECRET: idp.clientSecret,
      DCC_OIDC_NAME: "Test IdP",
      DCC_OIDC_ADMIN_GROUPS: "dcc-admins",
      DCC_OIDC_OPERATOR_GROUPS: "dcc-operators,release",
    },
  });
  browser = await launchBrowser();
});
afterAll(async () => {
  for (const ctx of contexts) await ctx.close();
  await browser?.close();
  await c?.dispose();
  await idp?.close();
});

describe("sign-in with the identity provider", () => {
  it("offers only the provider, and lets nobody but an admin-group member be the first user", async () => {
    const page = await newPage();
    await page.goto(`${c.url}/`);
    expect(new URL(page.url()).pathname).toBe("/login");
    await page.getByRole("link", { name: "Sign in with Test IdP" }).waitFor();
    expect(await page.getByLabel("Password").count()).toBe(0);
    expect((await page.goto(`${c.url}/setup`))!.url()).toContain("/login");

    await providerSignIn(page, "victor");
    expect(new URL(page.url()).pathname).toBe("/login");
    await expect.poll(() => page.getByRole("alert").textContent()).toContain("no admin yet");
    expect(await count("SELECT count(*) AS n FROM users")).toBe(0);
    expect(await count("SELECT count(*) AS n FROM sessions")).toBe(0);
  });

  it("signs the first admin in by group, linked by issuer and subject", async () => {
    const page = await newPage();
    await providerSignIn(page, "alice");
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Apps" }).waitFor();
    expect(await page.locator(".user-menu").textContent()).toContain("admin");
    await page.screenshot({ path: join(shots, "oidc-admin.png") });
    const rows = (await c.db().execute("SELECT u.username, u.role, u.password_hash, i.issuer, i.subject FROM users u JOIN oidc_identities i ON i.user_id = u.id")).rows;
    expect(rows.map((r) => [r.username, r.role, r.issuer, r.subject])).toEqual([["alice", "admin", idp.issuer, "alice"]]);
    expect(rows[0].password_hash).toBe("!oidc");
    // The admin can reach an admin-only page.
    expect((await page.goto(`${c.url}/audit`))!.status()).toBe(200);
  });

  it("signs a viewer in by group, re-evaluates the role at the next sign-in, and signs out at the provider too", async () => {
    const page = await newPage();
    await providerSignIn(page, "victor");
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Apps" }).waitFor();
    expect(await page.locator(".user-menu .role-tag").textContent()).toBe("viewer");
    expect((await page.goto(`${c.url}/audit`))!.status()).toBe(403);
    await page.goto(`${c.url}/`);
    await waitForHydration(page);

    idp.groups.victor = ["release"];
    const before = await count("SELECT count(*) AS n FROM sessions");
    await page.getByRole("button", { name: "Sign out" }).click();
    // The provider asks to confirm its own sign-out, then sends the browser back to /login.
    await page.getByRole("button", { name: "Yes, sign me out" }).click();
    await page.waitForURL(`${c.url}/login`);
    expect(await count("SELECT count(*) AS n FROM sessions")).toBe(before - 1);

    // The provider's session is gone: it asks for a login again.
    await providerSignIn(page, "victor");
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Apps" }).waitFor();
    expect(await page.locator(".user-menu .role-tag").textContent()).toBe("operator");
    expect(await count("SELECT count(*) AS n FROM users WHERE username = 'victor' AND role = 'operator'")).toBe(1);
    expect(await count("SELECT count(*) AS n FROM audit_log WHERE actor = 'system:oidc' AND action = 'user.update' AND target = 'user:victor'")).toBe(1);
  });

  it("refuses a callback whose state was tampered with, before any code is exchanged", async () => {
    const page = await newPage();
    const sessions = await count("SELECT count(*) AS n FROM sessions");
    const calls = idp.tokenCalls;
    idp.tamper = "state";
    try {
      await providerSignIn(page, "alice");
    } finally {
      idp.tamper = "none";
    }
    expect(new URL(page.url()).pathname).toBe("/login");
    await expect.poll(() => page.getByRole("alert").textContent()).toContain("could not be verified");
    expect(idp.tokenCalls).toBe(calls);
    expect(await count("SELECT count(*) AS n FROM sessions")).toBe(sessions);
    expect((await page.context().cookies()).some((k) => k.name.endsWith("dcc_session"))).toBe(false);
  });

  const forged: [Tamper, string][] = [
    ["wrong-nonce", "nonce"],
    ["wrong-audience", "aud"],
    ["expired", "exp"],
    ["foreign-key", "signature"],
    ["wrong-issuer", "iss"],
  ];
  for (const [mode, hint] of forged) {
    it(`refuses an ID token with ${mode.replace("-", " ")} and creates no session`, async () => {
      const page = await newPage();
      const sessions = await count("SELECT count(*) AS n FROM sessions");
      const denied = await count("SELECT count(*) AS n FROM audit_log WHERE action = 'auth.sign_in' AND outcome = 'denied'");
      idp.tamper = mode;
      try {
        await providerSignIn(page, "alice");
      } finally {
        idp.tamper = "none";
      }
      expect(new URL(page.url()).pathname).toBe("/login");
      await expect.poll(() => page.getByRole("alert").textContent()).toContain("could not be verified");
      expect(await count("SELECT count(*) AS n FROM sessions")).toBe(sessions);
      expect((await page.context().cookies()).some((k) => k.name.endsWith("dcc_session"))).toBe(false);
      expect(await count("SELECT count(*) AS n FROM audit_log WHERE action = 'auth.sign_in' AND outcome = 'denied'")).toBe(denied + 1);
      const detail = String((await c.db().execute("SELECT detail FROM audit_log WHERE action = 'auth.sign_in' ORDER BY id DESC LIMIT 1")).rows[0].detail);
      expect(detail.toLowerCase(), `audit detail names the ${hint} check`).toMatch(new RegExp(hint === "signature" ? "signature|key" : `${hint}|claim`, "i"));
    });
  }
});
