// In headless Chromium against the real console, agent, Docker engine and a local OSV-compatible
// server: the dashboard row of an app pinning jinja2==2.10 carries a "high · 1" badge, its app page
// lists the advisory with "fixed in 2.10.1", and an admin adds a webhook target on the
// Notifications page, sends a test and sees it delivered.
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../integration/agents";
import { startStack, type Stack } from "../integration/stack-support";
import { launchBrowser, signIn, waitForHydration } from "../support/browser";
import { freePort } from "../support/net";
import { startOsvServer, type OsvServer } from "../support/osv-server";
import { WebhookReceiver } from "../support/webhook-receiver";

const NAME = "vuln-ui";
let s: Stack;
let osv: OsvServer;
let browser: Browser;
let shots: string;
const rx = new WebhookReceiver();

beforeAll(async () => {
  osv = await startOsvServer(["GHSA-462w-v97r-4m45", "PYSEC-2019-217"]);
  await rx.up();
  s = await startStack({ DCC_OSV_URL: osv.url });
  browser = await launchBrowser();
  shots = join(process.cwd(), "test-results", "screenshots");
  await mkdir(shots, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
  await s?.close();
  await osv?.close();
  await rx.down();
});

describe("vulnerabilities and notifications in the browser", () => {
  it("dashboard badge and the app page's list with the fixed version", async () => {
    await s.git.createRepo(NAME, { "index.html": "ok\n", "requirements.txt": "jinja2==2.10\n" });
    const r = await s.c.mutate("apps.create", { name: NAME, repository: s.repoUrl(NAME), startCommand: "httpd -f -p $PORT -h /app", port: await freePort(), hostId: s.hostId });
    expect(r.status).toBe(200);
    await waitFor("the finding", async () => (await s.c.query<{ items: unknown[] }>("apps.vulnerabilities", { name: NAME })).body.result?.data.items.length, 60_000, 250);

    const page = await browser.newPage();
    await signIn(page, s.c);
    await page.goto(s.c.url);
    const badge = page.locator(`tr[data-app="${NAME}"] .vuln-badge`);
    await badge.waitFor();
    expect(await badge.textContent()).toBe("high · 1");
    expect(await badge.getAttribute("data-severity")).toBe("high");
    await page.screenshot({ path: join(shots, "vulnerability-badge.png"), fullPage: true });

    await badge.click();
    await page.waitForURL((u) => u.pathname === `/apps/${NAME}`);
    const row = page.locator('#vulnerabilities tr[data-vuln="GHSA-462w-v97r-4m45"]');
    await row.waitFor();
    expect(await row.locator("[data-fixed-in]").textContent()).toBe("2.10.1");
    expect(await row.textContent()).toContain("CVE-2019-10906");
    expect(await row.textContent()).toContain("jinja2");
    await page.screenshot({ path: join(shots, "vulnerability-list.png"), fullPage: true });
    await page.close();
  });

  it("Notifications page: add a target, send a test, see it delivered", async () => {
    const page = await browser.newPage();
    await signIn(page, s.c);
    await page.goto(`${s.c.url}/settings/notifications`);
    await waitForHydration(page);
    await page.getByLabel("URL").fill("http://169.254.169.254/hook");
    await page.getByRole("button", { name: "Add target" }).click();
    await page.getByText("URL must not point at a link-local or metadata address").waitFor();

    await page.getByLabel("URL").fill(`${rx.url}/ui-hook`);
    await page.getByRole("button", { name: "Add target" }).click();
    const secret = page.getByTestId("new-secret");
    await secret.waitFor();
    expect(await secret.locator("code").textContent()).toMatch(/^whsec_/);
    await page.getByRole("button", { name: `Send a test to ${rx.url}/ui-hook` }).click();
    await waitFor("the test message", () => rx.json("/ui-hook").find((b) => b.event === "test"), 20_000);
    await waitFor("last outcome shown", async () => {
      await page.goto(`${s.c.url}/settings/notifications`);
      return (await page.locator("[data-last-outcome]").first().getAttribute("data-last-outcome")) === "delivered";
    }, 20_000, 500);
    expect(await page.locator("[data-last-outcome]").first().textContent()).toContain("HTTP 204");
    await page.screenshot({ path: join(shots, "notifications.png"), fullPage: true });
    await page.close();
  });
});
