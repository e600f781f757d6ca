// The app page's Logs panel in Debian's Chromium against the real console, its local agent and the
// real Docker engine: a busybox app prints a line every 0.2 s and the lines arrive live; pause
// holds them, resume shows them, search filters and highlights, download saves the buffer. The
// page also shows the generated compose file and the health and resource panels.
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchBrowser, signIn } from "../support/browser";
import { ROOT, startConsole, type RunningConsole } from "../support/console";
import { dockerAvailable, removeByLabel, TEST_IMAGE } from "../support/docker";
import { startGitServer, type GitServer } from "../support/git-server";
import { freePort } from "../support/net";

const shots = join(ROOT, "test-results/screenshots");
const APP = "log-ticker";
const WAIT = { timeout: 30_000, interval: 100 };

let c: RunningConsole;
let git: GitServer;
let browser: Browser;
let page: Page;
let hostId = "";

const logLines = () => page.locator(".log-view .log-line");
const lineCount = () => logLines().count();
const logState = () => page.locator("[data-log-state]").getAttribute("data-log-state");

beforeAll(async () => {
  expect(await dockerAvailable(), "a Docker engine (scripts/test-deps.sh)").toBe(true);
  await mkdir(shots, { recursive: true });
  git = await startGitServer();
  const repo = await git.createRepo(APP, { "index.html": "tick\n" });
  c = await startConsole({ env: { DCC_LOCAL_AGENT: "1", DCC_ALLOW_INSECURE_GIT: "1", DCC_BASE_IMAGE: TEST_IMAGE } });
  const deadline = Date.now() + 60_000;
  while (!hostId) {
    const hosts = (await c.query<{ items: { id: string; online: boolean }[] }>("hosts.list")).body.result?.data.items ?? [];
    hostId = hosts.find((h) => h.online)?.id ?? "";
    if (!hostId && Date.now() > deadline) throw new Error(`the local agent did not come online:\n${c.output().slice(-3000)}`);
    if (!hostId) await new Promise((r) => setTimeout(r, 100));
  }
  const created = await c.mutate("apps.create", {
    name: APP,
    repository: repo.url,
    startCommand: "i=0; while true; do i=$((i+1)); echo tick $i; [ $((i % 5)) -eq 0 ] && echo warn $i >&2; sleep 0.2; done & httpd -f -p $PORT -h /app",
    port: await freePort(),
    hostId,
  });
  expect(created.status).toBe(200);
  for (const end = Date.now() + 60_000; ; ) {
    const a = (await c.query<{ status: string; health: string; lastError: string | null }>("apps.get", { name: APP })).body.result?.data;
    if (a?.status === "RUNNING" && a.health === "reachable") break;
    if (a?.lastError || Date.now() > end) throw new Error(`app did not come up: ${a?.lastError ?? JSON.stringify(a)}`);
    await new Promise((r) => setTimeout(r, 200));
  }

  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  await signIn(page, c);
});

afterAll(async () => {
  await browser?.close();
  await c?.dispose();
  if (hostId) await removeByLabel(`dcc.host=${hostId}`).catch(() => {});
  await git?.close();
});

describe("app page: logs", () => {
  it("shows the container's output arriving live", async () => {
    await page.goto(`${c.url}/apps/${APP}`);
    const log = page.getByRole("log", { name: `Log output of ${APP}` });
    await log.waitFor();
    await expect.poll(logState, WAIT).toBe("live");
    await expect.poll(lineCount, WAIT).toBeGreaterThan(3);
    const first = await lineCount();
    // New lines keep coming without a reload.
    await expect.poll(lineCount, WAIT).toBeGreaterThan(first + 5);
    const text = await log.innerText();
    expect(text).toMatch(/tick \d+/);
    // stderr is marked as such.
    await expect.poll(() => page.locator('.log-line[data-stream="stderr"]').count(), WAIT).toBeGreaterThan(0);
    expect(await page.locator('.log-line[data-stream="stderr"]').first().innerText()).toMatch(/warn \d+/);
    // A few lines a second: screen readers still hear them.
    expect(await log.getAttribute("aria-live")).toBe("polite");
  });

  it("pauses (lines are held, not shown) and resumes", async () => {
    const pause = page.getByRole("button", { name: "Pause" });
    await pause.click();
    const resume = page.getByRole("button", { name: "Resume" });
    expect(await resume.getAttribute("aria-pressed")).toBe("true");
    const frozen = await lineCount();
    const lastShown = await logLines().last().innerText();
    await expect.poll(() => page.locator("[data-log-state]").innerText(), WAIT).toMatch(/paused · ([3-9]|\d\d+) new lines held/);
    expect(await lineCount()).toBe(frozen);
    expect(await logLines().last().innerText()).toBe(lastShown);
    expect(await page.getByRole("log").getAttribute("aria-live")).toBe("off");

    await resume.click();
    expect(await page.getByRole("button", { name: "Pause" }).getAttribute("aria-pressed")).toBe("false");
    await expect.poll(lineCount, WAIT).toBeGreaterThan(frozen + 3);
  });

  it("searches: filters the lines and highlights the match", async () => {
    const search = page.getByLabel("Search");
    await search.fill("warn");
    await expect.poll(async () => (await logLines().allInnerTexts()).every((t) => /warn \d+/.test(t)), WAIT).toBe(true);
    expect(await lineCount()).toBeGreaterThan(0);
    expect(await page.locator(".log-view mark").first().innerText()).toBe("warn");
    await expect.poll(() => page.locator(".log-count").innerText()).toMatch(/^\d+ of \d+ lines match/);

    await search.fill("no such text anywhere");
    await expect.poll(lineCount).toBe(0);
    await search.fill("TICK 1");
    // Case-insensitive; "tick 1", "tick 10"…, highlighted as written in the line.
    await expect.poll(lineCount).toBeGreaterThan(0);
    expect(await page.locator(".log-view mark").first().innerText()).toBe("tick 1");
    await search.fill("");
    await expect.poll(lineCount).toBeGreaterThan(10);
  });

  it("downloads the buffer as a .log file", async () => {
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download the log as a file" }).click()]);
    expect(download.suggestedFilename()).toMatch(new RegExp(`^${APP}-.*\\.log$`));
    const text = await readFile((await download.path())!, "utf8");
    const lines = text.trim().split("\n");
    expect(lines.length).toBeGreaterThan(10);
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z (stdout|stderr) (tick|warn) \d+$/);
    expect(text).toMatch(/ stderr warn \d+/);
  });

  it("shows the compose file, health history and usage charts, and takes the screenshot", async () => {
    const compose = page.getByLabel("Generated compose file (read-only)");
    const yaml = await compose.innerText();
    expect(yaml).toMatch(/dcc\.app: "log-ticker"/); // every string quoted: the same under YAML 1.1 and 1.2
    expect(yaml).toContain("/bin/sh");
    expect(yaml).toContain("echo tick $$i"); // compose's `$` escaped, as the agent writes it
    expect(yaml).toContain("no-new-privileges:true");
    expect(await page.getByText("As the agent renders it").count()).toBe(1);
    const history = page.getByRole("list", { name: "Status and health changes, newest first" });
    expect(await history.innerText()).toMatch(/RUNNING\s+reachable/);
    await page.getByRole("heading", { name: "Health and resources" }).waitFor();
    // Usage samples arrive on the live stream about every 10 s; two draw a line.
    const cpu = page.getByRole("img", { name: /^CPU: now [\d.]+ %/ });
    await expect.poll(async () => Number((await cpu.getAttribute("data-samples", { timeout: 1000 }).catch(() => null)) ?? 0), { timeout: 60_000, interval: 500 }).toBeGreaterThanOrEqual(2);
    expect(await page.locator(".spark-line").count()).toBeGreaterThanOrEqual(2); // CPU and memory
    expect(await page.getByRole("img", { name: /^Memory: now [\d.]+ (B|KiB|MiB|GiB)/ }).count()).toBe(1);
    await page.getByLabel("Search").fill("tick");
    await page.locator(".log-view mark").first().waitFor();
    await page.screenshot({ path: join(shots, "app-page.png"), fullPage: true });
    // A phone: the page's panels (log, controls, charts, compose file) fit the width.
    await page.setViewportSize({ width: 390, height: 844 });
    const overflowing = await page.evaluate(() =>
      [...document.querySelectorAll("main .panel, main .panel *")]
        // A table scrolls inside its own wrapper (which must fit): its cells may reach past the edge.
        .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest(".log-view, .compose-file, .timeline") && !e.parentElement?.closest(".table-wrap"))
        .map((e) => `${e.tagName.toLowerCase()}.${e.className}`),
    );
    expect(overflowing).toEqual([]);
    await page.screenshot({ path: join(shots, "app-page-phone.png"), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it("holds no follow on the agent once the page is gone", async () => {
    const follows = (msg: string) =>
      c
        .output()
        .split("\n")
        .filter((l) => l.includes(`"msg":"${msg}"`) && l.includes(`"app":"${APP}"`));
    const started = follows("log follow started").length;
    expect(started).toBeGreaterThan(0);
    await page.goto(`${c.url}/`);
    // Every follow this page opened has ended on the agent, the last one because its viewer left.
    await expect.poll(() => follows("log follow ended").length, WAIT).toBe(started);
    expect(follows("log follow ended").at(-1)).toContain('"reason":"stopped by the console"');
  });
});
