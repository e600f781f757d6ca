// WCAG 2.1 A/AA checks with axe-core on every page of the console, in Debian's Chromium against the
// real console: the dashboard with an app, Add App with a template and its Advanced section open
// (environment, secrets, git), the app page (configuration, deploy history), the Hosts page with a
// GPU host (ledger, preflight, model store), the marketplace, audit, account and settings pages.
// A fake agent speaking the real protocol stands in for the GPU box (the pages are under test).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeAgent } from "../integration/agents";
import { launchBrowser, signIn, waitForHydration } from "../support/browser";
import { startConsole, type RunningConsole } from "../support/console";

const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];
const facts = {
  hostname: "gpu-box",
  nvidia: { runtime: true, driverVersion: "580.159.04", gpus: [{ index: 0, uuid: "GPU-0", name: "NVIDIA H200", memoryMiB: 143771 }] },
  preflight: { driverVersion: "580.159.04", cudaVersion: "13.0", toolkit: "runtime", problems: [] },
  gpuLedger: [{ index: 0, uuid: "GPU-0", name: "NVIDIA H200", totalMiB: 143771, usedMiB: 3590, freeMiB: 140181, holders: [{ app: "a11y-app", pid: 487, memoryMiB: 3590, container: "3f4e9b2c1d0a" }] }],
  modelStore: { path: "/opt/dockerstore/.models", totalBytes: 2_000_000_000, folders: [{ name: "Stable-diffusion", bytes: 2_000_000_000 }], partial: false, at: new Date().toISOString() },
};

let c: RunningConsole;
let browser: Browser;
let page: Page;
let fake: FakeAgent;

interface Violation {
  id: string;
  help: string;
  nodes: string[];
}

/** axe's WCAG 2.1 A/AA violations on the page as it is now. */
async function violations(p: Page): Promise<Violation[]> {
  await p.evaluate(AXE);
  return p.evaluate(async (tags) => {
    const axe = (window as unknown as { axe: { run: (ctx: Document, o: unknown) => Promise<{ violations: { id: string; help: string; nodes: { target: string[] }[] }[] }> } }).axe;
    const r = await axe.run(document, { runOnly: { type: "tag", values: tags } });
    return r.violations.map((v) => ({ id: v.id, help: v.help, nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ")) }));
  }, WCAG);
}

beforeAll(async () => {
  c = await startConsole({ env: { DCC_ALLOW_INSECURE_GIT: "1" } });
  const e = (await c.mutate<{ token: string; consoleUrl: string }>("hosts.createEnrollment", {})).body.result!.data;
  fake = new FakeAgent();
  await fake.connect(e.consoleUrl, { token: e.token }, [], facts);
  const created = await c.mutate("apps.create", {
    name: "a11y-app",
    repository: "http://127.0.0.1:9/none.git",
    startCommand: "httpd -f -p $PORT -h /app",
    port: 8321,
    env: { CLI_ARGS: "--listen" },
    secrets: { HF_TOKEN: "hf_a11y_canary" },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(200);
  browser = await launchBrowser();
  // The console's CSP admits only its own nonced scripts: the checker is injected past it.
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, bypassCSP: true });
  page = await context.newPage();
  await signIn(page, c);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  fake?.ws.terminate();
  await c?.dispose();
});

describe("WCAG 2.1 A/AA (axe-core) on every page", () => {
  it("the checker finds a planted violation (so an empty list means something)", async () => {
    await page.goto(`${c.url}/audit`);
    await waitForHydration(page);
    await page.evaluate(() => document.querySelector("main")!.insertAdjacentHTML("beforeend", '<button type="button" id="planted"></button><input type="text" id="planted-input">'));
    const found = (await violations(page)).map((v) => v.id);
    expect(found).toContain("button-name");
    expect(found).toContain("label");
  });

  const pages: [string, string, ((p: Page) => Promise<void>)?][] = [
    ["dashboard", "/", (p) => p.locator('[data-live="on"]').waitFor({ timeout: 30_000 })],
    ["Add App with a template, Advanced open", "/apps/new?template=comfyui", async (p) => {
      await p.getByRole("dialog", { name: "Add app" }).waitFor();
      await p.locator("details.advanced summary").click();
    }],
    ["marketplace", "/marketplace", (p) => p.getByRole("dialog", { name: "Marketplace" }).waitFor()],
    ["app page", "/apps/a11y-app", (p) => p.getByRole("region", { name: "Configuration" }).waitFor()],
    ["hosts", "/hosts", (p) => p.getByText("NVIDIA H200").first().waitFor()],
    ["audit", "/audit"],
    ["account", "/account"],
    ["settings: tokens", "/settings/tokens"],
    ["settings: users", "/settings/users"],
    ["settings: notifications", "/settings/notifications"],
    ["settings: registries", "/settings/registries"],
  ];
  for (const [name, path, ready] of pages) {
    it(`${name} (${path})`, async () => {
      const r = await page.goto(`${c.url}${path}`);
      expect(r!.status(), path).toBe(200);
      await waitForHydration(page);
      await ready?.(page);
      expect(await violations(page)).toEqual([]);
    });
  }
});
