// The Hosts page's Orphans panel in headless Chromium against the real console and agent on real
// Docker: Scan lists an orphan workspace with its size and age; "Remove selected (dry run first)"
// shows a confirmation listing exactly what would go (nothing is removed yet); confirming removes it.
// The host's base-image block: "Pre-pull base image" queues a pre-pull and shows how it ended.
import { lstat, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgent, waitFor, type RunningAgent } from "../integration/agents";
import { launchBrowser, signIn } from "../support/browser";
import { startConsole, type RunningConsole } from "../support/console";
import { TEST_IMAGE, dockerAvailable, removeByLabel } from "../support/docker";

let c: RunningConsole;
let agent: RunningAgent;
let browser: Browser;
let hostId: string;
let shots: string;

beforeAll(async () => {
  expect(await dockerAvailable(), "a Docker engine (scripts/test-deps.sh)").toBe(true);
  c = await startConsole({ env: { DCC_BASE_IMAGE: TEST_IMAGE } });
  const e = (await c.mutate<{ token: string; consoleUrl: string }>("hosts.createEnrollment", {})).body.result!.data;
  agent = await startAgent({ consoleUrl: e.consoleUrl, token: e.token });
  hostId = String((await agent.waitForLog("enrolled")).hostId);
  await agent.waitForLog("connected");
  browser = await launchBrowser();
  shots = join(process.cwd(), "test-results", "screenshots");
  await mkdir(shots, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
  await agent?.stop(true);
  if (hostId) await removeByLabel(`dcc.host=${hostId}`).catch(() => {});
  await c?.dispose();
});

describe("Orphans panel", () => {
  it("scans, confirms a dry run listing what goes, then removes", async () => {
    const root = join(agent.stateDir, "..", "workspaces");
    await mkdir(join(root, "left-behind", "outputs"), { recursive: true });
    await writeFile(join(root, "left-behind", "outputs", "a.png"), "p".repeat(20_000));
    const page = await browser.newPage();
    await signIn(page, c);
    await page.goto(`${c.url}/hosts`);
    const panel = page.locator(`[data-orphans="${hostId}"]`);
    await panel.getByText("not scanned yet").waitFor();
    await panel.getByRole("button", { name: "Scan" }).click();
    const row = panel.locator('[data-orphan="workspace:left-behind"]');
    await row.waitFor();
    expect(await row.textContent()).toMatch(/workspace.*left-behind.*KiB/);
    await page.screenshot({ path: join(shots, "orphans-scanned.png"), fullPage: true });

    await panel.getByRole("button", { name: "Remove selected (dry run first)" }).click();
    const confirm = panel.getByTestId("orphans-confirm");
    await confirm.waitFor();
    expect(await confirm.textContent()).toContain(join(root, "left-behind"));
    expect(await lstat(join(root, "left-behind")).then(() => true)).toBe(true);
    await page.screenshot({ path: join(shots, "orphans-confirm.png"), fullPage: true });

    await confirm.getByRole("button", { name: "Remove this item" }).click();
    await panel.getByTestId("orphans-removed").waitFor();
    await waitFor("the folder removed", async () => !(await lstat(join(root, "left-behind")).then(() => true, () => false)));
    expect(await panel.locator('[data-orphan="workspace:left-behind"]').count()).toBe(0);
    await page.screenshot({ path: join(shots, "orphans-removed.png"), fullPage: true });
  });

  it("pre-pulls the base image from the Hosts page and shows how it ended", async () => {
    const page = await browser.newPage();
    await signIn(page, c);
    await page.goto(`${c.url}/hosts`);
    const block = page.locator('[data-pull-state]').first();
    expect(await block.getAttribute("data-pull-state")).toBe("none");
    await block.getByRole("button", { name: "Pre-pull base image" }).click();
    await page.locator('[data-pull-state="done"]').waitFor({ timeout: 30_000 });
    expect(await page.locator('[data-pull-state="done"]').textContent()).toContain(`${TEST_IMAGE} is already on this host`);
    await page.screenshot({ path: join(shots, "hosts-prepull.png"), fullPage: true });
  });
});
