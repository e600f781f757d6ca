// GPU policy and placement through the real console, with fake agents that report GPU hosts over
// the real protocol (no GPU on this machine): GPUs are held while an app runs and released when it
// stops (or taken over from an app that died), so one GPU serves several installed apps in turn; a start that finds the GPU taken is
// refused naming the holder; a template's default port that is taken moves to the next free one
// (shown by apps.suggestPort first) while a typed one stays a CONFLICT; GPU-optional apps go to GPU
// hosts first; placement skips hosts whose free GPU memory is too small; `force` reaches the agent;
// the agent's facts message refreshes the host's GPU ledger.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AppDto } from "../../app/services/apps.server";
import { startConsole, type RunningConsole } from "../support/console";
import { FakeAgent, waitFor } from "./agents";

const REPO = "http://127.0.0.1:9/none.git";
const ledger = (free: number) => [{ index: 0, uuid: "GPU-0", name: "RTX 4090", totalMiB: 24564, usedMiB: 24564 - free, freeMiB: free, holders: [] }];
const gpuFacts = (name: string, free = 24000) => ({
  hostname: name,
  nvidia: { runtime: true, driverVersion: "550.54.14", gpus: [{ index: 0, uuid: "GPU-0", name: "RTX 4090", memoryMiB: 24564 }] },
  gpuLedger: ledger(free),
  preflight: { driverVersion: "550.54.14", cudaVersion: "12.4", toolkit: "runtime", problems: [] },
});

let c: RunningConsole;
const fakes: FakeAgent[] = [];

async function enrolFake(facts: Record<string, unknown>): Promise<FakeAgent> {
  const e = (await c.mutate<{ token: string; consoleUrl: string }>("hosts.createEnrollment", {})).body.result!.data;
  const f = new FakeAgent();
  await f.connect(e.consoleUrl, { token: e.token }, [], facts);
  fakes.push(f);
  return f;
}
/** Acks and answers every command the fake receives (ok, with the observation the action leads to). */
const autoAnswer = (f: FakeAgent) =>
  f.autoAnswer((cmd) => {
    const running = cmd.action !== "stop";
    return { ok: true, observed: { app: cmd.app, status: running ? "RUNNING" : "STOPPED", health: running ? "reachable" : "unknown", phase: null, lastError: null, at: new Date().toISOString() } };
  });
const settled = (name: string) => waitFor(`${name} settled`, async () => !(await getApp(name))?.phase);
const getApp = async (name: string) => (await c.query<AppDto>("apps.get", { name })).body.result?.data;
const lastParams = async (app: string, action: string) => {
  const rows = (await c.db().execute({ sql: "SELECT params FROM commands WHERE app_name = ? AND action = ? ORDER BY rowid DESC LIMIT 1", args: [app, action] })).rows;
  return JSON.parse(String(rows[0]?.params ?? "null")) as Record<string, unknown> | null;
};

beforeAll(async () => {
  c = await startConsole({ env: { DCC_ALLOW_INSECURE_GIT: "1" } });
});
afterAll(async () => {
  for (const f of fakes) f.ws?.terminate();
  await c?.dispose();
});

describe("GPU policy: held while running, released when stopped", () => {
  it("lets one GPU serve several installed apps in turn, refusing a start while another holds it", async () => {
    const g = await enrolFake(gpuFacts("one-gpu"));
    const stop = autoAnswer(g);
    const make = (name: string, port: number) => c.mutate("apps.create", { name, repository: REPO, startCommand: "run", port, hostId: g.hostId, gpu: { mode: "required", count: 1 } });
    expect((await make("gpu-comfy", 21001)).status).toBe(200);
    expect((await getApp("gpu-comfy"))!.gpuDevices).toEqual(["0"]);
    await settled("gpu-comfy");
    // While comfy runs, a second GPU app cannot be placed on the one GPU.
    expect((await make("gpu-forge", 21002)).status).toBe(400);

    // Stopping comfy frees its GPU at once (the stop is queued); forge now fits.
    expect((await c.mutate("apps.stop", { name: "gpu-comfy" })).status).toBe(200);
    expect((await getApp("gpu-comfy"))!.gpuDevices).toEqual([]);
    expect((await make("gpu-forge", 21002)).status).toBe(200);
    expect((await getApp("gpu-forge"))!.gpuDevices).toEqual(["0"]);
    await settled("gpu-comfy");
    await settled("gpu-forge");

    // Starting comfy again while forge holds the GPU is refused, naming the holder; nothing is queued.
    const before = (await c.db().execute({ sql: "SELECT count(*) AS n FROM commands WHERE app_name = 'gpu-comfy'" })).rows[0]!.n;
    const refused = await c.mutate("apps.start", { name: "gpu-comfy" });
    expect(refused.status).toBe(409);
    expect(JSON.stringify(refused.body.error), JSON.stringify(refused.body)).toMatch(/GPU 0 is held by gpu-forge/);
    expect((await c.db().execute({ sql: "SELECT count(*) AS n FROM commands WHERE app_name = 'gpu-comfy'" })).rows[0]!.n).toBe(before);

    // Stop forge, start comfy: it gets the GPU back, and the start carries the devices in its spec.
    expect((await c.mutate("apps.stop", { name: "gpu-forge" })).status).toBe(200);
    await settled("gpu-forge");
    expect((await c.mutate("apps.start", { name: "gpu-comfy", force: true })).status).toBe(200);
    expect((await getApp("gpu-comfy"))!.gpuDevices).toEqual(["0"]);
    const params = (await lastParams("gpu-comfy", "start"))!;
    expect(params.force).toBe(true);
    expect((params.spec as { gpuDevices: string[] }).gpuDevices).toEqual(["0"]);
    const held = await c.db().execute({ sql: "SELECT device FROM gpu_assignments WHERE host_id = ?", args: [g.hostId] });
    expect(held.rows.map((r) => r.device)).toEqual(["0"]);

    // comfy dies by itself (no stop): the GPU it still holds does not block forge's start.
    await settled("gpu-comfy");
    g.send({ type: "status", reports: [{ app: "gpu-comfy", status: "STOPPED", health: "unknown", phase: null, lastError: "exited with code 137", at: new Date().toISOString() }] });
    await waitFor("comfy down", async () => (await getApp("gpu-comfy"))?.status === "STOPPED");
    expect((await getApp("gpu-comfy"))!.gpuDevices).toEqual(["0"]);
    expect((await c.mutate("apps.start", { name: "gpu-forge" })).status).toBe(200);
    expect((await getApp("gpu-forge"))!.gpuDevices).toEqual(["0"]);
    expect((await getApp("gpu-comfy"))!.gpuDevices).toEqual([]);
    stop();
  });

  it("keeps pinned GPUs with a stopped app", async () => {
    const g = await enrolFake({ ...gpuFacts("pin-host"), nvidia: { runtime: true, driverVersion: "550.54.14", gpus: [0, 1].map((i) => ({ index: i, uuid: `GPU-${i}`, name: "RTX 4090", memoryMiB: 24564 })) } });
    const stop = autoAnswer(g);
    const pinned = await c.mutate<AppDto>("apps.create", { name: "pinned-app", repository: REPO, startCommand: "run", port: 21201, hostId: g.hostId, gpu: { mode: "required", devices: ["1"] } });
    expect(pinned.status, JSON.stringify(pinned.body)).toBe(200);
    expect(pinned.body.result!.data.gpuDevices).toEqual(["1"]);
    await settled("pinned-app");
    expect((await c.mutate("apps.stop", { name: "pinned-app" })).status).toBe(200);
    await settled("pinned-app");
    expect((await getApp("pinned-app"))!.gpuDevices).toEqual(["1"]);
    // Another app that wants two GPUs cannot take the pinned one while its app is stopped.
    const two = await c.mutate("apps.create", { name: "two-gpus", repository: REPO, startCommand: "run", port: 21202, hostId: g.hostId, gpu: { mode: "required", count: 2 } });
    expect(two.status).toBe(400);
    stop();
  });

  it("refuses force that is not a boolean, naming the field", async () => {
    const r = await c.mutate("apps.start", { name: "gpu-comfy", force: "yes" });
    expect(r.status).toBe(400);
  });
});

describe("placement by ports, free GPU memory and GPU-optional apps", () => {
  it("moves a template's taken default port to the next free one, shown before submit; a typed taken port is a CONFLICT", async () => {
    const h = await enrolFake({ hostname: "ports-host" });
    const suggest = async () => (await c.query<{ port: number; moved: boolean; hostId: string }>("apps.suggestPort", { templateId: "stable-diffusion-webui", hostId: h.hostId })).body.result!.data;
    expect(await suggest()).toMatchObject({ port: 7860, moved: false });
    const install = (name: string, extra: Record<string, unknown> = {}) =>
      c.mutate<AppDto>("apps.create", { name, templateId: "stable-diffusion-webui", repository: REPO, hostId: h.hostId, gpu: { mode: "none" }, ...extra });
    const first = await install("sd-one");
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body.result!.data.port).toBe(7860);
    expect(await suggest()).toMatchObject({ port: 7861, moved: true });
    // Four templates default to 7860: a second install on the same host does not fail.
    const second = await c.mutate<AppDto>("apps.create", { name: "tgw-one", templateId: "text-generation-webui", repository: REPO, hostId: h.hostId, gpu: { mode: "none" } });
    expect(second.status, JSON.stringify(second.body)).toBe(200);
    expect(second.body.result!.data.port).toBe(7861);
    expect(second.body.result!.data.sharedModels).toBe(true);
    // An explicitly typed port that is taken stays a field error, and nothing is created.
    const typed = await install("sd-typed", { port: 7860 });
    expect(typed.status).toBe(409);
    expect(typed.body.error!.data.fields).toHaveProperty("port");
    expect(await getApp("sd-typed")).toBeUndefined();
    const typedPreview = (await c.query<{ taken: boolean }>("apps.suggestPort", { port: 7860, hostId: h.hostId })).body.result!.data;
    expect(typedPreview.taken).toBe(true);
  });

  it("sends a GPU-optional app to a GPU host first and skips GPUs without enough free memory", async () => {
    const full = await enrolFake(gpuFacts("gpu-full", 2000));
    const roomy = await enrolFake(gpuFacts("gpu-roomy", 20000));
    const opt = await c.mutate<AppDto>("apps.create", { name: "opt-gpu", repository: REPO, startCommand: "run", port: 21100, gpu: { mode: "optional" } });
    expect(opt.status).toBe(200);
    // Both GPU hosts can give it a GPU; the CPU-only hosts enrolled earlier are not chosen.
    expect([full.hostId, roomy.hostId]).toContain(opt.body.result!.data.hostId);
    expect(opt.body.result!.data.gpuDevices).toEqual(["0"]);
    const big = await c.mutate<AppDto>("apps.create", { name: "big-gpu", repository: REPO, startCommand: "run", port: 21101, gpu: { mode: "required", minMemoryMiB: 12288 } });
    expect(big.status).toBe(200);
    // Never the host whose GPU has 2 GB free; the roomy one unless opt-gpu took its only GPU.
    const placed = big.body.result!.data;
    expect(placed.hostId).not.toBe(full.hostId);
    if (opt.body.result!.data.hostId !== roomy.hostId) expect(placed.hostId).toBe(roomy.hostId);
  });

  it("takes the agent's facts message as the host's new GPU ledger", async () => {
    const g = await enrolFake(gpuFacts("ledger-host", 24000));
    g.send({ type: "facts", facts: { ...gpuFacts("ledger-host", 9318), gpuLedger: [{ ...ledger(9318)[0], holders: [{ app: "comfy", pid: 4242, memoryMiB: 14541, container: "abc123" }] }] } });
    const host = await waitFor("the new ledger", async () => {
      const h = (await c.query<{ facts: { gpuLedger?: { freeMiB: number; holders: { app: string }[] }[] } }>("hosts.get", { id: g.hostId })).body.result!.data;
      return h.facts.gpuLedger?.[0]?.freeMiB === 9318 ? h : null;
    });
    expect(host.facts.gpuLedger![0]!.holders[0]!.app).toBe("comfy");
  });
});
