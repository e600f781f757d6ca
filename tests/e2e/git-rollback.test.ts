// In Debian's Chromium against the built console with a real agent, Docker engine and git server:
// Add App → Advanced → Git (a hostile ref named as a field error, then a branch and submodules),
// and the app page's deploy history with a confirmed Rollback that brings the previous commit
// back (operators only: a viewer sees the history without the action).
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchBrowser, signIn, waitForHydration } from "../support/browser";
import { ROOT } from "../support/console";
import { freePort } from "../support/net";
import { startStack, type AppItem, type ActionReply, type Stack } from "../integration/stack-support";

const NAME = "roll-ui";
const VIEWER = "watcher";
const PASSWORD = "viewer-password-long-enough-42";
let s: Stack;
let browser: Browser;
let page: Page;
let one: string;
let two: string;
const shots = join(ROOT, "test-results/screenshots");

const app = async () => (await s.c.query<AppItem>("apps.get", { name: NAME })).body.result?.data;
const until = async <T,>(what: string, check: () => Promise<T | false | undefined | null>, ms = 90_000): Promise<T> => {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check().catch(() => null);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
};

beforeAll(async () => {
  await mkdir(shots, { recursive: true });
  s = await startStack();
  one = (await s.git.createRepo(NAME, { "index.html": "one\n" })).sha;
  expect((await s.c.mutate("users.create", { username: VIEWER, password: PASSWORD, role: "viewer" })).status).toBe(200);
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await signIn(page, s.c);
});
afterAll(async () => {
  await browser?.close();
  await s?.close();
});

describe("Add App → Git section", () => {
  it("names a hostile ref as a field error, then adds the app on a branch with submodules", async () => {
    const port = await freePort();
    await page.goto(`${s.c.url}/apps/new`);
    const dialog = page.getByRole("dialog", { name: "Add app" });
    await dialog.waitFor();
    await waitForHydration(page);
    await dialog.getByLabel("Name").fill(NAME);
    await dialog.getByLabel("Git repository").fill(s.repoUrl(NAME));
    await dialog.getByLabel("Start command").fill("httpd -f -p $PORT -h /app");
    await dialog.getByLabel("Port").fill(String(port));
    await dialog.getByText("Advanced").click();
    const git = dialog.getByRole("group", { name: "Git" });
    await git.getByLabel("Branch, tag or commit").fill("--upload-pack=touch /tmp/x");
    await dialog.getByRole("button", { name: "Add app" }).click();
    const error = dialog.locator('.field-error[data-field="gitRef"]');
    await error.waitFor();
    expect(await error.textContent()).toContain("Branch, tag or commit must not start with a hyphen");
    expect(await app()).toBeUndefined();

    await git.getByLabel("Branch, tag or commit").fill("main");
    await git.getByLabel("Fetch git submodules").check();
    await page.screenshot({ path: join(shots, "add-app-git.png") });
    await dialog.getByRole("button", { name: "Add app" }).click();
    await page.locator(`tr[data-app="${NAME}"]`).waitFor();
    expect(await app()).toMatchObject({ gitRef: "main", gitSubmodules: true });
    await until("RUNNING at the first commit", async () => {
      const a = await app();
      return a?.status === "RUNNING" && a.commitSha === one;
    });
  });

  it("a template that wants submodules (SD.Next) ticks the box", async () => {
    await page.goto(`${s.c.url}/apps/new?template=sdnext`);
    const dialog = page.getByRole("dialog", { name: "Add app" });
    await dialog.waitFor();
    await dialog.getByText("Advanced").click();
    expect(await dialog.getByRole("group", { name: "Git" }).getByLabel("Fetch git submodules").isChecked()).toBe(true);
    await page.goto(`${s.c.url}/apps/new?template=stable-diffusion-webui`);
    await page.getByRole("dialog", { name: "Add app" }).getByText("Advanced").click();
    expect(await page.getByRole("dialog", { name: "Add app" }).getByLabel("Fetch git submodules").isChecked()).toBe(false);
  });
});

describe("deploy history and rollback on the app page", () => {
  it("lists deploys and rolls back to the previous commit after confirmation", async () => {
    two = await s.git.commit(NAME, { "index.html": "two\n" });
    const r = await s.c.mutate<ActionReply>("apps.reinstall", { name: NAME });
    expect(r.status).toBe(200);
    await until("RUNNING at the second commit", async () => {
      const a = await app();
      return a?.status === "RUNNING" && a.commitSha === two;
    });

    await page.goto(`${s.c.url}/apps/${NAME}`);
    await waitForHydration(page);
    const history = page.getByRole("region", { name: "Deploy history" });
    await history.locator(`tr[data-deploy="${two}"]`).waitFor();
    const rows = history.locator("tbody tr[data-deploy]");
    expect(await rows.count()).toBe(2);
    expect(await rows.nth(0).textContent()).toContain(two.slice(0, 12));
    expect(await rows.nth(1).textContent()).toContain(one.slice(0, 12));
    expect(await rows.nth(1).textContent()).toContain("provision");
    // the current commit has no Rollback; the previous one has
    expect(await rows.nth(0).getByRole("button", { name: /Roll back/ }).count()).toBe(0);

    const asked: string[] = [];
    page.once("dialog", (d) => {
      asked.push(d.message());
      void d.accept();
    });
    await rows.nth(1).getByRole("button", { name: `Roll back ${NAME} to ${one.slice(0, 12)}` }).click();
    await until("RUNNING at the first commit again", async () => {
      const a = await app();
      return a?.status === "RUNNING" && a.commitSha === one;
    });
    expect(asked[0]).toContain(`Roll ${NAME} back to commit ${one.slice(0, 12)}`);
    // the page reads the history again when the command's result arrives
    await history.locator("tbody tr[data-deploy]").first().filter({ hasText: "rollback" }).waitFor({ timeout: 30_000 });
    expect(await app()).toMatchObject({ gitRef: "main" });
    await page.screenshot({ path: join(shots, "deploy-history.png") });
  });

  it("a dismissed confirmation changes nothing", async () => {
    const before = (await s.c.db().execute("SELECT count(*) AS n FROM commands")).rows[0]!.n;
    page.once("dialog", (d) => void d.dismiss());
    await page.getByRole("region", { name: "Deploy history" }).getByRole("button", { name: `Roll back ${NAME} to ${two.slice(0, 12)}` }).first().click();
    await new Promise((r) => setTimeout(r, 500));
    expect((await s.c.db().execute("SELECT count(*) AS n FROM commands")).rows[0]!.n).toBe(before);
  });

  it("a viewer sees the history but no Rollback", async () => {
    const viewer = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await signIn(viewer, s.c, VIEWER, PASSWORD);
    await viewer.goto(`${s.c.url}/apps/${NAME}`);
    const history = viewer.getByRole("region", { name: "Deploy history" });
    await history.locator(`tr[data-deploy="${two}"]`).first().waitFor();
    expect(await history.locator("tbody tr[data-deploy]").count()).toBeGreaterThanOrEqual(3);
    expect(await history.getByRole("button", { name: /Roll back/ }).count()).toBe(0);
    await viewer.close();
  });
});
