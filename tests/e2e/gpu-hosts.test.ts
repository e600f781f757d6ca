// The GPU side of the console in Debian's Chromium, with a fake agent that speaks the real protocol
// standing in for a GPU box (there is no GPU here; the agent's ledger and preflight code is tested
// on recorded nvidia-smi output, and scripts/gpu-check.sh runs it on real hardware):
//   the Hosts page shows the preflight (driver, CUDA, toolkit), each GPU's memory split by app, and
//   the model store's size per folder; the dashboard's GPU column shows an app's devices, memory
//   and utilisation as its usage samples arrive.
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
const GIB = 1024;

const facts = {
  hostname: "h200-box",
  nvidia: { runtime: true, driverVersion: "550.54.15", gpus: [{ index: 0, uuid: "GPU-0", name: "NVIDIA H200", memoryMiB: 143771 }] },
  preflight: { driverVersion: "550.54.15", cudaVersion: "12.4", toolkit: "runtime", problems: [] },
  gpuLedger: [
    {
      index: 0,
      uuid: "GPU-0",
      name: "NVIDIA H200",
      totalMiB: 143771,
      usedMiB: 58 * GIB,
      freeMiB: 143771 - 58 * GIB,
      utilizationPct: 71,
      holders: [
        { app: "comfy", pid: 4242, memoryMiB: 40 * GIB, container: "3f4e9b2c1d0a" },
        { app: "sdxl", pid: 4343, memoryMiB: 16 * GIB, container: "9a8b7c6d5e4f" },
        { app: null, pid: 99, memoryMiB: 2 * GIB, container: null },
      ],
    },
  ],
  modelStore: { path: "/opt/dockerstore/.models", totalBytes: 13_900_000_000, folders: [{ name: "Stable-diffusion", bytes: 13_000_000_000 }, { name: "Lora", bytes: 900_000_000 }], partial: false, at: new Date().toISOString() },
};

let c: RunningConsole;
let browser: Browser;
let page: Page;
let fake: FakeAgent;
/** Answers per app name (default: ok and RUNNING). */
const answers = new Map<string, Record<string, unknown>>();

beforeAll(async () => {
  await mkdir(shots, { recursive: true });
  c = await startConsole({ env: { DCC_ALLOW_INSECURE_GIT: "1" } });
  const e = (await c.mutate<{ token: string; consoleUrl: string }>("hosts.createEnrollment", {})).body.result!.data;
  fake = new FakeAgent();
  await fake.connect(e.consoleUrl, { token: e.token }, [], facts);
  fake.autoAnswer((cmd) => answers.get(cmd.app!) ?? { ok: true, observed: { app: cmd.app, status: "RUNNING", health: "reachable", phase: null, lastError: null, at: new Date().toISOString() } });
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1500, height: 900 } });
  await signIn(page, c);
});

afterAll(async () => {
  await browser?.close();
  fake?.ws?.terminate();
  await c?.dispose();
});

describe("GPU hosts in the browser", () => {
  it("shows the dashboard's GPU column from an app's devices and usage", async () => {
    expect((await c.mutate("apps.create", { name: "comfy", repository: REPO, startCommand: "run", port: 8188, hostId: fake.hostId, gpu: { mode: "required" } })).status).toBe(200);
    await page.locator('tr[data-app="comfy"] [data-light="green"]').waitFor(WAIT);
    fake.send({ type: "usage", samples: [{ app: "comfy", cpuPct: 12, memoryBytes: 3_000_000_000, gpuMemoryMiB: 40 * GIB, gpuUtilPct: 71, at: new Date().toISOString() }] });
    await expect.poll(() => page.locator('tr[data-app="comfy"] [data-gpu]').textContent(), WAIT).toBe("GPU 0 · 40 GiB · 71 %");
  });

  it("offers Start anyway after a GPU refusal, and it starts with force", async () => {
    const why = "needs 48 GiB, 82.4 GiB free on GPU 0: comfy holds 40 GiB (start with force to try anyway)";
    answers.set("big-model", { ok: false, error: why, observed: { app: "big-model", status: "STOPPED", health: "unknown", phase: null, lastError: why, at: new Date().toISOString() } });
    expect((await c.mutate("apps.create", { name: "big-model", repository: REPO, startCommand: "run", port: 8190, hostId: fake.hostId })).status).toBe(200);
    const row = page.locator('tr[data-app="big-model"]');
    await row.locator('[data-light="red"]').waitFor(WAIT);
    expect(await row.locator("[data-reason]").textContent()).toContain("comfy holds 40 GiB");
    answers.delete("big-model");
    page.once("dialog", (d) => void d.accept());
    await row.getByRole("button", { name: "Start anyway big-model" }).click();
    await row.locator('[data-light="green"]').waitFor(WAIT);
    const params = (await c.db().execute({ sql: "SELECT params FROM commands WHERE app_name = 'big-model' AND action = 'start'" })).rows.map((r) => JSON.parse(String(r.params)) as { force?: boolean });
    expect(params).toHaveLength(1);
    expect(params[0]!.force).toBe(true);
  });

  it("shows the preflight, each GPU's memory by app and the model store on the Hosts page", async () => {
    await page.goto(`${c.url}/hosts`);
    const pf = page.locator("[data-preflight]");
    await pf.waitFor(WAIT);
    expect(await pf.textContent()).toContain("driver 550.54.15 · supports CUDA 12.4 · container toolkit: NVIDIA runtime");
    const gpu = page.locator('[data-gpu-ledger="0"]');
    expect(await gpu.textContent()).toContain("58 GiB of 140.4 GiB used");
    expect(await gpu.locator(".ledger-holders").textContent()).toBe("comfy: 40 GiB" + "sdxl: 16 GiB" + "other processes: 2 GiB");
    expect(await gpu.locator(".ledger-bar .seg").count()).toBe(3);
    const store = page.locator("[data-model-store]");
    expect((await store.textContent())!.replace(/\s+/g, " ")).toContain("/opt/dockerstore/.models · 14 GB");
    expect((await store.textContent())!.replace(/\s+/g, " ")).toContain("Stable-diffusion 13 GB");
    await page.locator("[data-preflight]").scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(shots, "hosts-gpu-ledger.png"), fullPage: true });
  });

  it("updates the ledger when the agent reports its facts again", async () => {
    fake.send({ type: "facts", facts: { ...facts, gpuLedger: [{ ...facts.gpuLedger[0]!, usedMiB: 2 * GIB, freeMiB: 143771 - 2 * GIB, holders: [facts.gpuLedger[0]!.holders[2]!] }] } });
    await expect
      .poll(async () => {
        await page.reload();
        return page.locator('[data-gpu-ledger="0"] .ledger-holders').textContent();
      }, WAIT)
      .toBe("other processes: 2 GiB");
  });

  it("lists a host's first apps, counts them all, and links to the rest on the dashboard", async () => {
    const [host] = (await c.db().execute("SELECT id, name FROM hosts")).rows;
    // 30 more apps on the host, straight into the database (as placed apps would be).
    await c.db().batch(
      Array.from({ length: 30 }, (_, i) => ({
        sql: "INSERT INTO apps (id, name, repository, start_command, port, host_id, status) VALUES (?, ?, ?, 'run', ?, ?, 'STOPPED')",
        args: [`bulk-${i}`, `zz-bulk-${String(i).padStart(2, "0")}`, REPO, 20000 + i, String(host!.id)],
      })),
      "write",
    );
    const total = Number((await c.db().execute({ sql: "SELECT count(*) AS n FROM apps WHERE host_id = ?", args: [String(host!.id)] })).rows[0]!.n);
    await page.goto(`${c.url}/hosts`);
    const apps = page.locator(`[data-host="${String(host!.id)}"] .host-apps`);
    await apps.waitFor(WAIT);
    expect(await apps.locator("h3").textContent()).toBe(`Apps (${total})`);
    expect(await apps.locator("li").count()).toBe(25);
    expect(await apps.locator("[data-app-counts]").textContent()).toContain("stopped");
    await apps.getByRole("link", { name: `All ${total} apps of ${String(host!.name)} on the dashboard` }).click();
    const filter = page.getByLabel("Filter apps");
    await expect.poll(() => filter.inputValue(), WAIT).toBe(`host:${String(host!.name)}`);
    await expect.poll(async () => (await page.locator('.filter-bar [role="status"]').textContent()) ?? "", WAIT).toMatch(new RegExp(`^${total} of \\d+ apps$`));
  });
});
