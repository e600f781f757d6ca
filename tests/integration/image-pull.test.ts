// Image pulls with progress, through the built console and a real agent, from a real registry on
// loopback (Debian's docker-registry) holding multi-layer images of random bytes: the base image is
// pre-pulled right after the host enrols (DCC_PREPULL_ON_ENROL), `hosts.prepull` pulls another one
// onto the host with bytes and percent on the host row, and an app whose image is not on the host
// shows its pull on apps.events as increasing percentages before it runs.
import type { AppDto } from "../../app/services/apps.server";
import type { HostDto } from "../../app/services/hosts.server";
import { docker, dockerAvailable, removeByLabel } from "../support/docker";
import { startConsole, type RunningConsole } from "../support/console";
import { startGitServer, type GitServer } from "../support/git-server";
import { freePort } from "../support/net";
import { startRegistry, type Registry } from "../support/registry";
import { openSse } from "../support/sse";
import { startAgent, waitFor, type RunningAgent } from "./agents";

let c: RunningConsole;
let git: GitServer;
let registry: Registry;
let agent: RunningAgent;
let hostId: string;
let baseImage: string;

const host = async () => (await c.query<HostDto>("hosts.get", { id: hostId })).body.result!.data;
const present = (ref: string) => docker(["image", "inspect", ref]).then(() => true, () => false);

beforeAll(async () => {
  expect(await dockerAvailable(), "a Docker engine (scripts/test-deps.sh)").toBe(true);
  registry = await startRegistry();
  baseImage = await registry.pushImage("base", { layers: 2, layerBytes: 4_000_000 });
  git = await startGitServer();
  c = await startConsole({ env: { DCC_ALLOW_INSECURE_GIT: "1", DCC_BASE_IMAGE: baseImage, DCC_PREPULL_ON_ENROL: "on" } });
  const e = (await c.mutate<{ token: string; consoleUrl: string }>("hosts.createEnrollment", {})).body.result!.data;
  agent = await startAgent({ consoleUrl: e.consoleUrl, token: e.token, args: ["--allow-insecure-git"] });
  hostId = String((await agent.waitForLog("enrolled")).hostId);
}, 300_000);
afterAll(async () => {
  await agent?.stop(true);
  if (hostId) await removeByLabel(`dcc.host=${hostId}`).catch(() => {});
  await c?.dispose();
  await git?.close();
  await registry?.close();
});

describe("image pulls", () => {
  it("pre-pulls the console's base image right after the host enrols", async () => {
    const done = await waitFor("automatic pre-pull done", async () => {
      const h = await host();
      if (h.pull?.state === "failed") throw new Error(h.pull.message ?? "failed");
      return h.pull?.state === "done" && h;
    }, 120_000, 200);
    expect(done.pull).toMatchObject({ image: baseImage, state: "done", pct: 100, requestedBy: "system:enrolment" });
    expect(done.pull!.bytes!.total).toBeGreaterThanOrEqual(8_000_000);
    expect(await present(baseImage)).toBe(true);
    const audit = await c.db().execute("SELECT actor FROM audit_log WHERE action = 'host.prepull'");
    expect(audit.rows.map((r) => r.actor)).toContain("system:enrolment");
  });

  it("hosts.prepull pulls a named image with bytes and percent on the host row; the same image again is a no-op", async () => {
    const image = await registry.pushImage("prepull", { layers: 3, layerBytes: 6_000_000 });
    expect(await present(image)).toBe(false);
    const seen: number[] = [];
    const r = await c.mutate<{ commandId: string; image: string }>("hosts.prepull", { id: hostId, image });
    expect(r.status).toBe(200);
    const done = await waitFor("pre-pull done", async () => {
      const h = await host();
      if (h.pull?.pct != null) seen.push(h.pull.pct);
      if (h.pull?.state === "failed") throw new Error(h.pull.message ?? "failed");
      return h.pull?.commandId === r.body.result!.data.commandId && h.pull.state === "done" && h;
    }, 120_000, 25);
    expect(done.pull!.bytes!.total).toBeGreaterThanOrEqual(18_000_000);
    expect(done.pull!.bytes!.done).toBe(done.pull!.bytes!.total);
    expect(done.pull!.message).toMatch(/^pulled /);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(await present(image)).toBe(true);
    // again: already there, answered without a pull
    const again = await c.mutate<{ commandId: string }>("hosts.prepull", { id: hostId, image });
    await waitFor("second pre-pull answered", async () => {
      const h = await host();
      return h.pull?.commandId === again.body.result!.data.commandId && h.pull.state === "done" && h;
    }, 30_000, 100);
    expect((await host()).pull!.message).toBe(`${image} is already on this host`);
    // an image reference that is not one is refused before anything is queued
    expect((await c.mutate("hosts.prepull", { id: hostId, image: "x y" })).status).toBe(400);
  });

  it("an app whose image is not on the host shows the pull on apps.events as increasing percentages", { timeout: 240_000 }, async () => {
    const image = await registry.pushImage("app", { layers: 4, layerBytes: 8_000_000 });
    const repo = await git.createRepo("pulled", { "index.html": "pulled app\n" });
    const port = await freePort();
    const sse = await openSse(`${c.url}/api/trpc/apps.events`, c.authHeaders);
    try {
      await sse.next((e) => e.event === "connected");
      const created = await c.mutate<AppDto>("apps.create", { name: "pulled", repository: repo.url, startCommand: "httpd -f -p $PORT -h /app", port, hostId, image });
      expect(created.status).toBe(200);
      const pulls: { pct: number; bytes?: { done: number; total: number }; phase: string }[] = [];
      const state: Record<string, unknown> = {};
      const seen: string[] = [];
      for (;;) {
        const e = await sse.next((x) => x.event === "message" && (JSON.parse(x.data) as { app?: string }).app === "pulled", 90_000).catch((err: Error) => {
          throw new Error(`${err.message}; seen: ${seen.join("\n")}`);
        });
        const m = JSON.parse(e.data) as Record<string, unknown>;
        seen.push(e.data.slice(0, 300));
        Object.assign(state, m);
        if (m.type === "progress" && m.step === "pull" && typeof m.pct === "number") pulls.push(m as never);
        if (state.status === "RUNNING" && state.health === "reachable") break;
        if (m.type === "result" && m.ok === false) throw new Error(String(m.error));
      }
      const pcts = pulls.map((p) => p.pct);
      expect(pcts).toEqual([...pcts].sort((a, b) => a - b));
      expect(pcts.at(-1)).toBe(100);
      expect(pcts.filter((p) => p > 0 && p < 100).length).toBeGreaterThanOrEqual(1);
      expect(new Set(pcts).size).toBeGreaterThanOrEqual(3);
      expect(pulls.at(-1)!.bytes!.total).toBeGreaterThanOrEqual(32_000_000);
      expect(pulls.some((p) => /^pulling image \d+% · [\d.]+ MB of [\d.]+ MB$/.test(p.phase))).toBe(true);
      expect(await (await fetch(`http://127.0.0.1:${port}/index.html`)).text()).toBe("pulled app\n");
    } finally {
      sse.close();
    }
  });
});
