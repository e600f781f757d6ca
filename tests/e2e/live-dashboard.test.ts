// Issue 5's "Show", in Debian's Chromium against the real console, its local agent and the real
// Docker engine, with fixture repositories served over smart HTTP on loopback. One page is signed
// in once; from then on every step must happen without a document load: a marker set on `window`
// after sign-in has to survive to the end, and the page must never fire another `load` event.
//
//   add an app in the dialog → its light goes amber → green
//   `docker kill` from outside → red, the reason on hover and on keyboard focus
//   Start (and Restart) from the row's buttons → green again
//   filter and sort the table from the keyboard
//   the app page → "Promote to marketplace" → the marketplace shows the template linking back
//   Marketplace → Install on that template → Add App pre-filled → submit → green
//   Hosts → the local host online with its Docker and compose facts and its apps
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Browser, Locator, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchBrowser, signIn } from "../support/browser";
import { ROOT, startConsole, type RunningConsole } from "../support/console";
import { docker, dockerAvailable, inspect, removeByLabel, TEST_IMAGE } from "../support/docker";
import { startGitServer, type GitServer } from "../support/git-server";
import { freePort } from "../support/net";

const shots = join(ROOT, "test-results/screenshots");
const APP = "live-web";
const COPY = "live-web-copy";
const SLUG = "live-web-template";
const START = "httpd -f -p $PORT -h /app";
/** Deploys, kills and restarts on a real engine: generous, but every wait ends as soon as the DOM says so. */
const LONG = { timeout: 90_000, interval: 100 };

let c: RunningConsole;
let git: GitServer;
let browser: Browser;
let page: Page;
let hostId = "";
let repoUrl = "";
let repoSha = "";
let port = 0;
let copyPort = 0;
let documentLoads = 0;

type HostItem = { id: string; name: string; online: boolean; facts: { docker?: { version: string }; compose?: { variant: string; version: string } } };

const row = (name: string): Locator => page.locator(`tr[data-app="${name}"]`);
const light = (name: string): Promise<string | null> =>
  page
    .locator(`tr[data-app="${name}"] [data-light]`)
    .getAttribute("data-light", { timeout: 1000 })
    .catch(() => null);
/** Every light an app's row has shown since the recorder was installed, in order, without repeats. */
const lightsSeen = (name: string): Promise<string[]> => page.evaluate((n) => (window as unknown as { __lights: Record<string, string[]> }).__lights[n] ?? [], name);

/** The page has not been reloaded or replaced since sign-in: the marker is still there and no document loaded. */
async function expectNoReload(): Promise<void> {
  expect(await page.evaluate(() => (window as unknown as { __marker?: number }).__marker)).toBe(1);
  expect(documentLoads).toBe(0);
}

async function containerOf(name: string): Promise<string> {
  const ids = (await docker(["ps", "-q", "--no-trunc", "--filter", `label=dcc.app=${name}`, "--filter", `label=dcc.host=${hostId}`])).split("\n").filter(Boolean);
  expect(ids, `one running container for ${name}`).toHaveLength(1);
  return ids[0];
}

beforeAll(async () => {
  expect(await dockerAvailable(), "a Docker engine (scripts/test-deps.sh)").toBe(true);
  await mkdir(shots, { recursive: true });
  git = await startGitServer();
  ({ url: repoUrl, sha: repoSha } = await git.createRepo("live-web", { "index.html": "hello from the live dashboard test\n" }));
  [port, copyPort] = [await freePort(), await freePort()];
  c = await startConsole({ env: { DCC_LOCAL_AGENT: "1", DCC_ALLOW_INSECURE_GIT: "1", DCC_BASE_IMAGE: TEST_IMAGE } });
  const deadline = Date.now() + 60_000;
  while (!hostId) {
    const hosts = (await c.query<{ items: HostItem[] }>("hosts.list")).body.result?.data.items ?? [];
    hostId = hosts.find((h) => h.online)?.id ?? "";
    if (!hostId && Date.now() > deadline) throw new Error(`the local agent did not come online:\n${c.output().slice(-3000)}`);
    if (!hostId) await new Promise((r) => setTimeout(r, 100));
  }

  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await signIn(page, c);
  expect(new URL(page.url()).pathname).toBe("/");
  await page.locator('[data-live="on"]').waitFor({ timeout: 30_000 });
  await page.evaluate(() => {
    const w = window as unknown as { __marker: number; __lights: Record<string, string[]> };
    w.__marker = 1;
    // Records each row's light as the DOM changes, so a short amber phase cannot be missed.
    w.__lights = {};
    const scan = () => {
      for (const el of document.querySelectorAll("tr[data-app] [data-light]")) {
        const name = el.closest("tr")!.getAttribute("data-app")!;
        const seq = (w.__lights[name] ??= []);
        const v = el.getAttribute("data-light")!;
        if (seq[seq.length - 1] !== v) seq.push(v);
      }
    };
    new MutationObserver(scan).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-light"] });
    scan();
  });
  page.on("load", () => documentLoads++);
});

afterAll(async () => {
  await browser?.close();
  await c?.dispose(); // stops the local agent with the console
  if (hostId) await removeByLabel(`dcc.host=${hostId}`).catch(() => {});
  await git?.close();
});

describe("live dashboard on the real engine", () => {
  it("adds an app in the dialog and its light goes amber → green with no reload", async () => {
    await page.getByRole("link", { name: "Add app" }).click();
    const dialog = page.getByRole("dialog", { name: "Add app" });
    await dialog.waitFor();
    await dialog.getByLabel("Name").fill(APP);
    await dialog.getByLabel("Git repository").fill(repoUrl);
    await dialog.getByLabel("Start command").fill(START);
    await dialog.getByLabel("Port").fill(String(port));
    await dialog.getByRole("button", { name: "Add app" }).click();

    await row(APP).waitFor({ timeout: 30_000 });
    await expect.poll(() => page.getByRole("dialog").count()).toBe(0);
    await expect.poll(() => light(APP), LONG).toBe("green");
    expect(await row(APP).locator("[data-status]").getAttribute("data-status")).toBe("RUNNING");
    const seen = await lightsSeen(APP);
    expect(seen[0], `lights seen: ${seen.join(" → ")}`).toBe("amber");
    expect(seen.at(-1)).toBe("green");
    expect(seen).not.toContain("red");
    // Uptime starts with the live RUNNING change (a stopped or starting app shows none).
    expect(await row(APP).locator("[data-uptime]").textContent()).toBe("< 1 min");
    // The commit arrives live too, and the port link reaches the running app.
    await expect.poll(() => row(APP).textContent(), LONG).toContain(repoSha.slice(0, 8));
    expect(await (await fetch(`http://127.0.0.1:${port}/index.html`)).text()).toBe("hello from the live dashboard test\n");
    expect(await row(APP).getByRole("link", { name: String(port) }).getAttribute("href")).toMatch(new RegExp(`:${port}/$`));
    await expectNoReload();
  });

  it("turns red with no reload when the container is killed from outside, the reason on hover and focus", async () => {
    const id = await containerOf(APP);
    await docker(["kill", id]);
    await expect.poll(() => light(APP), LONG).toBe("red");
    const status = row(APP).locator("[data-status]");
    expect(await status.getAttribute("data-status")).toBe("STOPPED");
    const reason = row(APP).locator(".status-detail");
    await page.mouse.move(0, 0);
    expect(await reason.isVisible()).toBe(false);
    await status.hover();
    await expect.poll(() => reason.isVisible()).toBe(true);
    expect(await reason.textContent()).toMatch(/killed|SIGKILL|137/);
    await page.mouse.move(0, 0);
    await expect.poll(() => reason.isVisible()).toBe(false);
    // Keyboard users get it too: the light is focusable and names the reason.
    await status.focus();
    await expect.poll(() => reason.isVisible()).toBe(true);
    expect(await status.getAttribute("aria-label")).toMatch(/^STOPPED: .*(killed|SIGKILL|137)/);
    await page.screenshot({ path: join(shots, "live-dashboard-stopped.png") });
    // A stopped app's port is plain text, not a link.
    expect(await row(APP).getByRole("link", { name: String(port) }).count()).toBe(0);
    await expectNoReload();
  });

  it("starts again from the row's button and shows green; Restart keeps it green", async () => {
    await row(APP).getByRole("button", { name: `Start ${APP}`, exact: true }).click();
    await expect.poll(() => light(APP), LONG).toBe("green");
    expect(await (await fetch(`http://127.0.0.1:${port}/index.html`)).text()).toContain("hello");

    const before = (await inspect(await containerOf(APP))).State.StartedAt;
    await row(APP).getByRole("button", { name: `Restart ${APP}`, exact: true }).click();
    await expect.poll(async () => (await inspect(await containerOf(APP))).State.StartedAt, LONG).not.toBe(before);
    await expect.poll(() => light(APP), LONG).toBe("green");
    // The buttons leave their pending state once the action is through.
    await expect.poll(() => row(APP).getByRole("button", { name: `Restart ${APP}`, exact: true }).isEnabled(), LONG).toBe(true);
    await expectNoReload();
  });

  it("opens the app page and promotes the app into the marketplace, which links back to it", async () => {
    await row(APP).getByRole("link", { name: APP }).click();
    await expect.poll(() => new URL(page.url()).pathname).toBe(`/apps/${APP}`);
    await page.getByRole("heading", { level: 1, name: APP }).waitFor();
    await expect.poll(() => page.locator(".title-row [data-light]").getAttribute("data-light"), LONG).toBe("green");
    await expect.poll(() => page.getByRole("button", { name: "Promote" }).isEnabled(), LONG).toBe(true);
    await page.screenshot({ path: join(shots, "app-page.png"), fullPage: true });

    await page.getByLabel("Template slug").fill(SLUG);
    await page.getByLabel("Title").fill("Live web fixture");
    await page.getByLabel("Summary").fill("A busybox httpd site promoted from the live dashboard test.");
    await page.getByRole("button", { name: "Promote" }).click();

    const market = page.getByRole("dialog", { name: "Marketplace" });
    await market.waitFor({ timeout: 30_000 });
    expect(new URL(page.url()).pathname).toBe("/marketplace");
    const card = market.locator(`[data-template="${SLUG}"]`);
    await card.waitFor();
    expect(await card.getByRole("heading").textContent()).toBe("Live web fixture");
    expect(await card.textContent()).toContain("Promoted from");
    const back = card.getByRole("link", { name: APP });
    expect(await back.getAttribute("href")).toBe(`/apps/${APP}`);
    await page.screenshot({ path: join(shots, "marketplace-promoted.png") });
    // The link back leads to the origin app's page.
    await back.click();
    await expect.poll(() => new URL(page.url()).pathname).toBe(`/apps/${APP}`);
    await page.getByRole("heading", { level: 1, name: APP }).waitFor();
    await expectNoReload();
  });

  it("installs the promoted template from the marketplace: Install → pre-filled Add App → submit → green", async () => {
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Marketplace" }).click();
    const market = page.getByRole("dialog", { name: "Marketplace" });
    await market.waitFor();
    await market.locator(`[data-template="${SLUG}"]`).getByRole("link", { name: "Install Live web fixture" }).click();

    const dialog = page.getByRole("dialog", { name: "Add app" });
    await dialog.waitFor();
    expect(new URL(page.url()).search).toBe(`?template=${SLUG}`);
    expect(await dialog.getByLabel("Template").inputValue()).toBe(SLUG);
    expect(await dialog.getByLabel("Git repository").inputValue()).toBe(repoUrl);
    expect(await dialog.getByLabel("Start command").inputValue()).toBe(START);
    // The origin app holds the template's port on this host: the dialog already offers the next free one.
    expect(await dialog.getByLabel("Port").inputValue()).toBe(String(port + 1));
    expect(await dialog.getByLabel("Name").inputValue()).toBe("");
    // Any other free port may be typed instead.
    await dialog.getByLabel("Name").fill(COPY);
    await dialog.getByLabel("Port").fill(String(copyPort));
    await dialog.getByRole("button", { name: "Add app" }).click();

    await row(COPY).waitFor({ timeout: 30_000 });
    expect(new URL(page.url()).pathname).toBe("/");
    await expect.poll(() => light(COPY), LONG).toBe("green");
    expect((await lightsSeen(COPY))[0]).toBe("amber");
    expect(await row(COPY).locator(".tag").textContent()).toBe(SLUG);
    expect(await (await fetch(`http://127.0.0.1:${copyPort}/index.html`)).text()).toBe("hello from the live dashboard test\n");
    expect(await light(APP)).toBe("green");
    await page.screenshot({ path: join(shots, "live-dashboard.png") });
    await expectNoReload();
  });

  it("filters and sorts the table from the keyboard", async () => {
    const names = () => page.locator("tbody tr[data-app]").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-app")));
    expect(await names()).toEqual([APP, COPY]);

    const filter = page.getByLabel("Filter apps");
    await filter.focus();
    await page.keyboard.type("copy");
    await expect.poll(names).toEqual([COPY]);
    expect(await page.getByRole("status").filter({ hasText: /of 2 apps/ }).textContent()).toMatch(/1 of 2 apps/);
    // The filter also matches status and host.
    await filter.fill("status:stopped");
    await expect.poll(names).toEqual([]);
    await filter.fill("running");
    await expect.poll(names).toEqual([APP, COPY]);
    await page.keyboard.press("Escape");
    expect(await filter.inputValue()).toBe("");

    // Sort by name, descending: the column header's button, pressed with the keyboard.
    const byName = page.getByRole("button", { name: /^Name/ });
    await byName.focus();
    await page.keyboard.press("Enter");
    await expect.poll(names).toEqual([COPY, APP]);
    expect(await page.locator("th[aria-sort]").first().getAttribute("aria-sort")).toBe("descending");
    await page.keyboard.press("Enter");
    await expect.poll(names).toEqual([APP, COPY]);
    const byPort = page.getByRole("button", { name: /^Port/ });
    await byPort.focus();
    await page.keyboard.press("Enter");
    await expect.poll(names).toEqual(port < copyPort ? [APP, COPY] : [COPY, APP]);
    await expectNoReload();
  });

  it("shows the local host online with its Docker and compose facts and its apps", async () => {
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Hosts" }).click();
    await expect.poll(() => new URL(page.url()).pathname).toBe("/hosts");
    const host = page.locator(`li.host[data-host="${hostId}"]`);
    await host.waitFor();
    expect(await host.locator("[data-online]").getAttribute("data-online")).toBe("true");
    expect(await host.locator("[data-online]").textContent()).toContain("online");

    const engine = await docker(["version", "--format", "{{.Server.Version}}"]);
    const facts = async (term: string) => (await host.locator(".facts > div").filter({ has: page.locator("dt", { hasText: term }) }).locator("dd").textContent())?.trim();
    expect(await facts("Docker")).toBe(engine);
    const h = (await c.query<HostItem>("hosts.get", { id: hostId })).body.result!.data;
    expect(h.facts.compose?.version).toBeTruthy();
    expect(await facts("Compose")).toBe(`${h.facts.compose!.version} (${h.facts.compose!.variant === "plugin" ? "docker compose" : "docker-compose"})`);
    expect(await facts("NVIDIA runtime")).toBe("no");
    const apps = await host.locator(".host-apps li").evaluateAll((items) => items.map((li) => li.querySelector("a")?.textContent));
    expect(apps.sort()).toEqual([APP, COPY]);
    expect(await host.locator(`.host-apps [data-light]`).evaluateAll((ls) => ls.map((l) => l.getAttribute("data-light")))).toEqual(["green", "green"]);
    await page.screenshot({ path: join(shots, "hosts.png"), fullPage: true });
    await expectNoReload();
  });
});
