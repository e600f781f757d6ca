// The dashboard row tells the truth and names the way out, in Debian's Chromium against the real
// console, with a fake agent that speaks the real protocol standing in for a GPU box (the console's
// rendering is what is under test; tests/faults drives the same lights with the real agent):
//   a failed deploy → red with the reason written beside the light (not only in a tooltip)
//   a deploy in progress → amber with its phase, and a Cancel button that ends it
//   a silent host → its app grey, "host offline", and a "Remove now" button instead of Deinstall
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeAgent } from "../integration/agents";
import { launchBrowser, signIn } from "../support/browser";
import { ROOT, startConsole, type RunningConsole } from "../support/console";

const shots = join(ROOT, "test-results/screenshots");
const REPO = "http://127.0.0.1:9/none.git";
const WAIT = { timeout: 30_000 };

let c: RunningConsole;
let browser: Browser;
let page: Page;
let fake: FakeAgent;
/** What the fake agent answers per app: null = acknowledge only (a deploy that runs on). */
const answers = new Map<string, Record<string, unknown> | null>();

const observed = (app: string, status: string, health: string, lastError: string | null = null) => ({ app, status, health, phase: null, lastError, at: new Date().toISOString() });

beforeAll(async () => {
  await mkdir(shots, { recursive: true });
  c = await startConsole({ env: { DCC_ALLOW_INSECURE_GIT: "1", DCC_HOST_SILENT_S: "4" } });
  const e = (await c.mutate<{ token: string; consoleUrl: string }>("hosts.createEnrollment", {})).body.result!.data;
  fake = new FakeAgent();
  await fake.connect(e.consoleUrl, { token: e.token });
  fake.autoAnswer((cmd) => answers.get(cmd.app!) ?? null);
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1400, height: 700 } });
  await signIn(page, c);
  await page.locator('[data-live="on"]').waitFor(WAIT);
});

afterAll(async () => {
  await browser?.close();
  fake?.ws?.terminate();
  await c?.dispose();
});

const row = (name: string) => page.locator(`tr[data-app="${name}"]`);
const create = (name: string, port: number) => c.mutate("apps.create", { name, repository: REPO, startCommand: "run", port, hostId: fake.hostId });

describe("status lights in the dashboard row", () => {
  it("a failed deploy is red with the reason beside the light; a healthy one is green with none", async () => {
    answers.set("broken", { ok: false, error: "install failed", observed: observed("broken", "STOPPED", "unknown", "the install command exited with code 3") });
    answers.set("healthy", { ok: true, observed: observed("healthy", "RUNNING", "reachable") });
    await create("broken", 21001);
    await create("healthy", 21002);
    await row("broken").locator('[data-light="red"]').waitFor(WAIT);
    await expect.poll(() => row("broken").locator("[data-reason]").textContent(), WAIT).toContain("exited with code 3");
    expect(await row("broken").locator("[data-reason]").isVisible()).toBe(true);
    await row("healthy").locator('[data-light="green"]').waitFor(WAIT);
    expect(await row("healthy").locator("[data-reason]").count()).toBe(0);
    // The way out of red is Start (it deploys an app its host does not have).
    expect(await row("broken").getByRole("button", { name: "Start broken", exact: true }).isEnabled()).toBe(true);
  });

  it("a deploy in progress is amber with its phase and can be cancelled from the row", async () => {
    answers.set("slow", null);
    await create("slow", 21003);
    await row("slow").locator('[data-light="amber"]').waitFor(WAIT);
    expect(await row("slow").locator("[data-reason]").textContent()).toMatch(/queued|starting/);
    page.once("dialog", (d) => void d.accept());
    await row("slow").getByRole("button", { name: "Cancel slow" }).click();
    await row("slow").locator('[data-light="red"]').waitFor(WAIT);
    await expect.poll(() => row("slow").locator("[data-reason]").textContent(), WAIT).toMatch(/cancelled by/);
  });

  it("a silent host turns its apps grey with 'host offline', and offers Remove now", async () => {
    fake.ws.pause(); // a frozen box: the socket stays open, nothing comes back
    await row("healthy").locator('[data-light="grey"]').waitFor({ timeout: 30_000 });
    expect(await row("healthy").locator("[data-reason]").textContent()).toMatch(/host offline \(was RUNNING\)/);
    await row("healthy").getByRole("button", { name: "Remove now healthy" }).waitFor(WAIT);
    expect(await row("healthy").getByRole("button", { name: "Deinstall healthy" }).count()).toBe(0);
    await page.screenshot({ path: join(shots, "status-lights-grey.png"), fullPage: true });
    page.once("dialog", (d) => void d.accept());
    await row("healthy").getByRole("button", { name: "Remove now healthy" }).click();
    await row("healthy").waitFor({ state: "detached", timeout: 30_000 });
  });
});
