// Shared model store, startup progress and stalls on the real engine, through the console, its
// local agent and Docker:
//   two apps share a file through /models; deinstalling both keeps it in <root>/.models
//   a start command that prints tqdm bars with `\r` shows progress 10 → 42 → 77 % at an SSE
//   client and in the dashboard row (Chromium, screenshot), then null once RUNNING
//   a silent app with startupStallSeconds: 5 becomes phase `stalled` (amber, still STARTING)
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchBrowser, signIn } from "../support/browser";
import { ROOT, startConsole, type RunningConsole } from "../support/console";
import { dockerAvailable, removeByLabel, TEST_IMAGE } from "../support/docker";
import { startGitServer, type GitServer } from "../support/git-server";
import { freePort } from "../support/net";
import { openSse, type SseReader } from "../support/sse";

const shots = join(ROOT, "test-results/screenshots");
const LONG = { timeout: 90_000, interval: 100 };

let c: RunningConsole;
let git: GitServer;
let browser: Browser;
let page: Page;
let hostId = "";
let repoUrl = "";

type AppItem = { name: string; status: string; phase: string | null; lastError: string | null; progress: { label: string; percent: number | null } | null; sharedModels: boolean };

async function getApp(name: string): Promise<AppItem | null> {
  return (await c.query<AppItem>("apps.get", { name })).body.result?.data ?? null;
}

async function create(input: Record<string, unknown>): Promise<void> {
  const r = await c.mutate("apps.create", { repository: repoUrl, ...input });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
}

/** tqdm as huggingface_hub draws it: `\r` before each redraw, no newline until the end. */
function tqdmCommand(): string {
  const bar = (pct: number) => `sd_xl_base_1.0.safetensors: ${String(pct).padStart(3)}%%|####      | ${pct}/100 [00:01<00:02, 93.1MB/s]`;
  return [`sleep 1`, `printf '${bar(10)}\\r'`, `sleep 2`, `printf '${bar(42)}\\r'`, `sleep 2`, `printf '${bar(77)}\\r'`, `sleep 2`, `printf '\\n'`, `exec httpd -f -p $PORT -h /app`].join("; ");
}

beforeAll(async () => {
  expect(await dockerAvailable(), "a Docker engine (scripts/test-deps.sh)").toBe(true);
  await mkdir(shots, { recursive: true });
  git = await startGitServer();
  ({ url: repoUrl } = await git.createRepo("startup-web", { "index.html": "hello\n" }));
  c = await startConsole({ env: { DCC_LOCAL_AGENT: "1", DCC_ALLOW_INSECURE_GIT: "1", DCC_BASE_IMAGE: TEST_IMAGE } });
  const deadline = Date.now() + 60_000;
  while (!hostId) {
    const hosts = (await c.query<{ items: { id: string; online: boolean }[] }>("hosts.list")).body.result?.data.items ?? [];
    hostId = hosts.find((h) => h.online)?.id ?? "";
    if (!hostId && Date.now() > deadline) throw new Error(`the local agent did not come online:\n${c.output().slice(-3000)}`);
    if (!hostId) await new Promise((r) => setTimeout(r, 100));
  }
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1400, height: 800 } });
  await signIn(page, c);
  await page.locator('[data-live="on"]').waitFor({ timeout: 30_000 });
});

afterAll(async () => {
  await browser?.close();
  await c?.dispose();
  if (hostId) await removeByLabel(`dcc.host=${hostId}`).catch(() => {});
  await git?.close();
});

describe("shared model store", () => {
  it("lets two apps share a file through /models, and deinstall keeps it", async () => {
    const [pa, pb] = [await freePort(), await freePort()];
    await create({ name: "models-writer", port: pa, sharedModels: true, startCommand: "echo shared-weights > /models/Lora/tiny.safetensors; exec httpd -f -p $PORT -h /app" });
    await expect.poll(async () => (await getApp("models-writer"))?.status, LONG).toBe("RUNNING");
    // The reader copies what it finds in the store into its own workspace, which httpd serves.
    await create({ name: "models-reader", port: pb, sharedModels: true, startCommand: "cp /models/Lora/tiny.safetensors /app/seen.txt; exec httpd -f -p $PORT -h /app" });
    await expect.poll(async () => (await getApp("models-reader"))?.status, LONG).toBe("RUNNING");
    expect(await (await fetch(`http://127.0.0.1:${pb}/seen.txt`)).text()).toBe("shared-weights\n");
    // An app without sharedModels does not see the store.
    const pc = await freePort();
    await create({ name: "models-none", port: pc, startCommand: "ls /models > /app/ls.txt 2>&1; exec httpd -f -p $PORT -h /app" });
    await expect.poll(async () => (await getApp("models-none"))?.status, LONG).toBe("RUNNING");
    expect(await (await fetch(`http://127.0.0.1:${pc}/ls.txt`)).text()).toMatch(/No such file/);

    // A clean reinstall wipes the app's untracked files, never the store.
    const store = join(c.dataDir, "workspaces", ".models");
    await writeFile(join(store, "Stable-diffusion", "placed-by-hand.safetensors"), "by hand\n");
    expect((await c.mutate("apps.reinstall", { name: "models-reader", clean: true })).status).toBe(200);
    await expect.poll(async () => (await getApp("models-reader"))?.phase ?? null, LONG).toBeNull();
    await expect.poll(async () => (await getApp("models-reader"))?.status, LONG).toBe("RUNNING");
    expect(await readFile(join(store, "Stable-diffusion", "placed-by-hand.safetensors"), "utf8")).toBe("by hand\n");

    for (const name of ["models-writer", "models-reader", "models-none"]) {
      expect((await c.mutate("apps.deinstall", { name })).status).toBe(200);
      await expect.poll(async () => await getApp(name), LONG).toBeNull();
    }
    expect(await readFile(join(store, "Lora", "tiny.safetensors"), "utf8")).toBe("shared-weights\n");
    expect(await readFile(join(store, "Stable-diffusion", "placed-by-hand.safetensors"), "utf8")).toBe("by hand\n");
    // The hosts list shows the store's size per folder once the agent reports its facts again.
    const facts = (await c.query<{ id: string; facts: { modelStore?: { path: string; folders: { name: string }[] } } }>("hosts.get", { id: hostId })).body.result?.data.facts;
    if (facts?.modelStore) expect(facts.modelStore.path).toBe(store);
  });
});

describe("startup progress", () => {
  let sse: SseReader;
  afterAll(() => sse?.close());

  it("shows tqdm progress 10 → 42 → 77 % at an SSE client and in the dashboard, then null once RUNNING", async () => {
    sse = await openSse(`${c.url}/api/trpc/apps.events`, c.authHeaders);
    await sse.next((e) => e.event === "connected");
    const port = await freePort();
    await create({ name: "sdxl-download", port, startCommand: tqdmCommand() });

    const seen: number[] = [];
    let shot = false;
    const deadline = Date.now() + 90_000;
    let final: Record<string, unknown> | null = null;
    while (Date.now() < deadline && !final) {
      const e = await sse.next((m) => m.event === "message" && m.data.includes('"sdxl-download"'), Math.max(1, deadline - Date.now()));
      const msg = JSON.parse(e.data) as Record<string, unknown> & { progress?: { percent: number | null; label: string } | null };
      if (msg.progress && typeof msg.progress.percent === "number" && seen.at(-1) !== msg.progress.percent) {
        seen.push(msg.progress.percent);
        expect(msg.progress.label).toBe("downloading sd_xl_base_1.0.safetensors");
        if (msg.progress.percent === 42 && !shot) {
          // The dashboard row shows the same figure as a bar with its text.
          const cell = page.locator('tr[data-app="sdxl-download"] .startup-progress');
          await expect.poll(() => cell.getAttribute("data-progress"), { timeout: 10_000, interval: 50 }).toMatch(/^(42|77)$/);
          expect(await cell.getAttribute("title")).toMatch(/^downloading sd_xl_base_1\.0\.safetensors (42|77) %$/);
          expect(await cell.locator("progress").getAttribute("value")).toMatch(/^(42|77)$/);
          await page.screenshot({ path: join(shots, "startup-progress.png") });
          shot = true;
        }
      }
      if (msg.status === "RUNNING") final = msg;
    }
    expect(seen).toEqual([10, 42, 77]);
    expect(shot).toBe(true);
    expect(final).not.toBeNull();
    expect(final!.progress).toBeNull();
    expect((await getApp("sdxl-download"))!.progress).toBeNull();
    await expect.poll(() => page.locator('tr[data-app="sdxl-download"] .startup-progress').count(), LONG).toBe(0);
  });

  it("marks a silent app stalled after startupStallSeconds, still amber", async () => {
    const port = await freePort();
    await create({ name: "silent-start", port, startupStallSeconds: 5, startCommand: "sleep 3600" });
    await expect.poll(async () => (await getApp("silent-start"))?.phase, LONG).toBe("stalled");
    const app = (await getApp("silent-start"))!;
    expect(app.status).toBe("STARTING");
    expect(app.lastError).toBe("stalled: no output and no answer on its port for 5 s");
    await expect.poll(() => page.locator('tr[data-app="silent-start"] [data-light]').getAttribute("data-light"), LONG).toBe("amber");
    expect(await page.locator('tr[data-app="silent-start"] [data-reason]').textContent()).toContain("stalled: no output");
  });

  it("refuses a bad startupStallSeconds or sharedModels, naming the field, creating nothing", async () => {
    for (const [field, value] of [["startupStallSeconds", 1], ["startupStallSeconds", "600"], ["startupStallSeconds", 10.5], ["sharedModels", "yes"]] as const) {
      const r = await c.mutate("apps.create", { name: "bad-settings", repository: repoUrl, startCommand: "true", port: 9999, [field]: value });
      expect(r.status).toBe(400);
      expect(r.body.error?.data.fields?.[field]).toBeTruthy();
    }
    expect(await getApp("bad-settings")).toBeNull();
  });
});
