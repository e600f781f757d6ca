// In Debian's Chromium against the real console: the Add App and Marketplace dialogs.
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchBrowser, signIn } from "../support/browser";
import { ROOT, startConsole, type RunningConsole } from "../support/console";

let c: RunningConsole;
let browser: Browser;
let page: Page;
const shots = join(ROOT, "test-results/screenshots");

beforeAll(async () => {
  await mkdir(shots, { recursive: true });
  c = await startConsole();
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  await signIn(page, c);
});
afterAll(async () => {
  await browser?.close();
  await c?.dispose();
});

async function appCount(): Promise<number> {
  return Number((await c.db().execute("SELECT count(*) AS n FROM apps")).rows[0].n);
}

describe("Add App dialog", () => {
  it("shows field errors from the server for an invalid form and adds nothing", async () => {
    await page.goto(`${c.url}/`);
    await page.getByRole("link", { name: "Add app" }).click();
    const dialog = page.getByRole("dialog", { name: "Add app" });
    await dialog.waitFor();
    expect(page.url()).toBe(`${c.url}/apps/new`);

    await dialog.getByLabel("Name").fill("Bad Name");
    await dialog.getByLabel("Git repository").fill("file:///etc/passwd");
    await dialog.getByLabel("Start command").fill("python main.py");
    await dialog.getByLabel("Port").fill("80");
    await dialog.getByRole("button", { name: "Add app" }).click();

    await expect.poll(() => dialog.locator(".field-error").count()).toBe(3);
    const errors = await dialog.locator(".field-error").allTextContents();
    expect(errors.join("\n")).toMatch(/Name must be lower-case/);
    expect(errors.join("\n")).toMatch(/Git repository must be an https:\/\/ URL/);
    expect(errors.join("\n")).toMatch(/Port must be between 1024 and 65535/);
    expect(await dialog.getByLabel("Name").getAttribute("aria-invalid")).toBe("true");
    // What the operator typed is kept for correction.
    expect(await dialog.getByLabel("Git repository").inputValue()).toBe("file:///etc/passwd");
    await page.screenshot({ path: join(shots, "add-app-errors.png") });
    expect(await appCount()).toBe(0);
  });

  it("adds a valid app and shows its row on the dashboard", async () => {
    const dialog = page.getByRole("dialog", { name: "Add app" });
    await dialog.getByLabel("Name").fill("my-webui");
    await dialog.getByLabel("Git repository").fill("https://github.com/example/webui.git");
    await dialog.getByLabel("Port").fill("7860");
    await dialog.getByRole("button", { name: "Add app" }).click();

    const row = page.locator('tr[data-app="my-webui"]');
    await row.waitFor();
    expect(new URL(page.url()).pathname).toBe("/");
    await expect.poll(() => page.getByRole("dialog").count()).toBe(0);
    expect(await row.locator("[data-status]").getAttribute("data-status")).toBe("STOPPED");
    expect(await row.textContent()).toContain("7860");
    await page.screenshot({ path: join(shots, "dashboard.png") });
    expect(await appCount()).toBe(1);
  });

  // ---- gateway: the sleep limit and the public-port opt-out
  it("takes the sleep limit and the public-port opt-out, naming a bad limit", async () => {
    await page.goto(`${c.url}/apps/new`);
    const dialog = page.getByRole("dialog", { name: "Add app" });
    await dialog.waitFor();
    await dialog.getByLabel("Name").fill("sleepy");
    await dialog.getByLabel("Git repository").fill("https://github.com/example/sleepy.git");
    await dialog.getByLabel("Start command").fill("python main.py");
    await dialog.getByLabel("Port").fill("7870");
    await dialog.locator("summary", { hasText: "Advanced" }).click();
    await dialog.getByLabel("Sleep after (minutes)").fill("0");
    await dialog.getByRole("button", { name: "Add app" }).click();
    await expect.poll(async () => (await dialog.locator(".field-error").allTextContents()).join("\n")).toMatch(/Sleep after \(minutes\)/);
    expect(await appCount()).toBe(1);
    await dialog.getByLabel("Sleep after (minutes)").fill("30");
    await dialog.getByLabel("Open on every interface").check();
    await dialog.getByRole("button", { name: "Add app" }).click();
    await page.locator('tr[data-app="sleepy"]').waitFor();
    const row = (await c.db().execute("SELECT idle_stop_minutes, public_port FROM apps WHERE name = 'sleepy'")).rows[0];
    expect(row).toMatchObject({ idle_stop_minutes: 30, public_port: 1 });
  });
  // ---- end gateway

  it("closes with Escape and the back button", async () => {
    await page.goto(`${c.url}/apps/new`);
    await page.getByRole("dialog", { name: "Add app" }).waitFor();
    await page.keyboard.press("Escape");
    await expect.poll(() => new URL(page.url()).pathname).toBe("/");
    await page.goBack();
    await expect.poll(() => new URL(page.url()).pathname).toBe("/apps/new");
    await page.getByRole("dialog", { name: "Add app" }).waitFor();
  });
});

describe("Marketplace dialog", () => {
  it("picks Stable Diffusion and opens Add App pre-filled", async () => {
    await page.goto(`${c.url}/`);
    await page.getByRole("link", { name: "Marketplace" }).first().click();
    const market = page.getByRole("dialog", { name: "Marketplace" });
    await market.waitFor();
    const card = market.locator('[data-template="stable-diffusion-webui"]');
    expect(await card.textContent()).toContain("7860");
    await page.screenshot({ path: join(shots, "marketplace.png") });
    await card.getByRole("link", { name: /Install/ }).click();

    const dialog = page.getByRole("dialog", { name: "Add app" });
    await dialog.waitFor();
    expect(new URL(page.url()).search).toBe("?template=stable-diffusion-webui");
    expect(await dialog.getByLabel("Template").inputValue()).toBe("stable-diffusion-webui");
    expect(await dialog.getByLabel("Git repository").inputValue()).toBe("https://github.com/AUTOMATIC1111/stable-diffusion-webui.git");
    // my-webui (above) already waits with 7860: the template's default moves to the next free port,
    // and the dialog says so before anything is submitted.
    expect(await dialog.getByLabel("Port").inputValue()).toBe("7861");
    expect(await dialog.locator("#h-f-port").textContent()).toMatch(/port 7860 is taken .*7861 is the next free one/);
    expect(await dialog.getByLabel("Start command").inputValue()).toContain("launch.py");
    expect(await dialog.getByLabel("Name").inputValue()).toBe("");
  });

  it("switching the template picker in Add App re-fills the fields", async () => {
    const dialog = page.getByRole("dialog", { name: "Add app" });
    await dialog.getByLabel("Template").selectOption("comfyui");
    expect(await dialog.getByLabel("Port").inputValue()).toBe("8188");
    expect(await dialog.getByLabel("Git repository").inputValue()).toContain("ComfyUI");
  });
});
