// Fault matrix, part 1: what goes wrong with the app itself and its inputs, on one console + one
// real agent + the real Docker engine, with the dashboard open in Chromium. Each scenario makes
// reality change, then the truth checker waits until apps.get and the dashboard light agree with
// `docker inspect` + an HTTP probe, checks that no command was lost or ran twice, and brings the
// app back with the one action a user would take.
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEST_IMAGE, docker, inspect } from "../support/docker";
import { FaultStack } from "./harness";
import {
  Dashboard,
  act,
  commandsOf,
  containersOf,
  createApp,
  deployApp,
  ledger,
  poll,
  printLags,
  probe,
  reality,
  realLight,
  recover,
  settle,
  touchInWorkspace,
  view,
  type FaultApp,
} from "./truth";

let s: FaultStack;
const dash = new Dashboard();

beforeAll(async () => {
  s = await FaultStack.start();
  await dash.open(s.c);
});
afterAll(async () => {
  printLags("app faults");
  await dash.close();
  await s?.close();
});

/** Waits until the app's commands have all ended (the agent's attempt is over). */
const attemptOver = (app: FaultApp) => ledger(s, app, 120_000);

describe("fault matrix: the app and its inputs", () => {
  it("container killed from outside: red with the reason; Start brings it back", async () => {
    const sc = "container killed";
    const app = await deployApp(s, { prefix: "kill", scenario: sc, dashboard: dash });
    const [id] = await containersOf(s, app.name);
    await docker(["kill", id!]);
    await settle(s, app, "red", { scenario: sc, reason: /killed|signal|137/i, dashboard: dash });
    expect(await dash.rowText(app.name)).toMatch(/killed|signal|137/i);
    await ledger(s, app);
    await recover(s, app, "start", { scenario: sc, dashboard: dash });
    await ledger(s, app);
  });

  it("OOM-killed under a memory limit: the kill is seen and kept in the timeline; the console follows Docker's restart; Restart recovers", async () => {
    const sc = "OOM-killed";
    // Serves; once /app/.boom exists it removes it (so Docker's restart comes up healthy) and grows
    // a shell string until the kernel kills it.
    const startCommand =
      "httpd -p $PORT -h /app; while [ ! -f /app/.boom ]; do sleep 0.2; done; rm -f /app/.boom; x=aaaaaaaaaaaaaaaa; while true; do x=\"$x$x\"; done";
    const app = await deployApp(s, { prefix: "oom", scenario: sc, dashboard: dash, startCommand });
    const [id] = await containersOf(s, app.name);
    await docker(["update", "--memory", "24m", "--memory-swap", "24m", id!]);
    await touchInWorkspace(s, app, ".boom");
    await poll("the kernel to OOM-kill the app", async () => {
      const r = await reality(s, app);
      return r.oomKilled || r.restarts > 0;
    }, 60_000, 100);
    // Docker's restart policy brings it back (the trigger is gone): the console must follow to green,
    // and the OOM must not be lost on the way.
    await settle(s, app, "green", { scenario: `${sc} (restarted by Docker)`, dashboard: dash, realityCapMs: 60_000 });
    await poll("the OOM kill in the app's timeline", async () => {
      const t = await s.c.query<{ items: unknown[] }>("apps.timeline", { name: app.name });
      return /memory|oom/i.test(JSON.stringify(t.body.result?.data.items ?? []));
    }, 20_000, 200, async () => JSON.stringify((await s.c.query("apps.timeline", { name: app.name })).body).slice(0, 3000));
    await ledger(s, app);
    await recover(s, app, "restart", { scenario: sc, dashboard: dash });
    await ledger(s, app);
  });

  it("app exits non-zero at start: red with the exit code; the command fixed by update, then running (or stopped until Start) as the console says", async () => {
    const sc = "exits non-zero at start";
    const app = await createApp(s, { prefix: "exit", startCommand: "echo start-failed-on-purpose >&2; exit 3" });
    await attemptOver(app);
    const { view: v } = await settle(s, app, "red", { scenario: sc, reason: /3|exit|start-failed-on-purpose/i, dashboard: dash });
    expect(v.lastError).toBeTruthy();
    await ledger(s, app);
    // The fix is an update of the command. On an app its agent had stopped it applies the change
    // without starting it (then Start is the one action); on one Docker was still restarting, the
    // recreated container comes up. Either way the console must tell which.
    await act(s, "update", { name: app.name, startCommand: "httpd -f -p $PORT -h /app" });
    await ledger(s, app);
    const up = await poll("the container to come up after the update", async () => realLight(await reality(s, app)) === "green", 10_000, 200).catch(() => false);
    if (up) {
      await settle(s, app, "green", { scenario: `${sc} (command fixed, running)`, dashboard: dash });
    } else {
      await settle(s, app, "red", { scenario: `${sc} (command fixed, still stopped)`, dashboard: dash });
      await recover(s, app, "start", { scenario: sc, dashboard: dash });
    }
    await ledger(s, app);
  });

  it("image not pullable: red naming the image; update to a present image deploys it", async () => {
    const sc = "image not pullable";
    const app = await createApp(s, { prefix: "img", image: "dcc-test/not-there:404" });
    await attemptOver(app);
    await settle(s, app, "red", { scenario: sc, reason: /not-there|image|pull/i, dashboard: dash });
    expect(await containersOf(s, app.name)).toEqual([]);
    await recover(s, app, "update", { scenario: sc, dashboard: dash, input: { image: TEST_IMAGE } });
    expect((await view(s.c, app.name))!.image).toBe(TEST_IMAGE);
    await ledger(s, app);
  });

  it("repository unreachable, then back: red naming the repository; Start deploys it", async () => {
    const sc = "repository unreachable";
    s.forge.refuse();
    let app: FaultApp;
    try {
      app = await createApp(s, { prefix: "repo" });
      await attemptOver(app);
      await settle(s, app, "red", { scenario: sc, reason: /repositor|clone|fetch|git|connect|unreachable/i, dashboard: dash });
      expect(await containersOf(s, app.name)).toEqual([]);
    } finally {
      s.forge.pass();
    }
    await recover(s, app, "start", { scenario: sc, dashboard: dash });
    await ledger(s, app);
  });

  it("install command fails: red with the install's output; fixing it by update deploys it", async () => {
    const sc = "install command fails";
    const app = await createApp(s, { prefix: "inst", installCommand: "echo install-broke-on-purpose >&2; exit 7" });
    await attemptOver(app);
    await settle(s, app, "red", { scenario: sc, reason: /install/i, dashboard: dash });
    await recover(s, app, "update", { scenario: sc, dashboard: dash, input: { installCommand: "echo installed > /app/installed.txt" } });
    await ledger(s, app);
  });

  it("start on a running app ends green, not amber, and runs nothing twice", async () => {
    const sc = "start on running";
    const app = await deployApp(s, { prefix: "srun", scenario: sc, dashboard: dash });
    const [before] = await containersOf(s, app.name);
    await act(s, "start", { name: app.name });
    const rows = await ledger(s, app);
    expect(rows.at(-1)!.action).toBe("start");
    const { view: v } = await settle(s, app, "green", { scenario: sc, dashboard: dash });
    expect(v.phase).toBeNull();
    expect(await containersOf(s, app.name)).toEqual([before]);
  });

  it("stop on a stopped app stays red and harmless; Start brings it back", async () => {
    const sc = "stop on stopped";
    const app = await deployApp(s, { prefix: "sstop", scenario: sc, dashboard: dash });
    await act(s, "stop", { name: app.name });
    await ledger(s, app);
    await settle(s, app, "red", { scenario: `${sc} (first stop)`, dashboard: dash });
    await act(s, "stop", { name: app.name });
    const rows = await ledger(s, app);
    expect(rows.filter((r) => r.action === "stop")).toHaveLength(2);
    const { view: v } = await settle(s, app, "red", { scenario: sc, dashboard: dash });
    expect(v.phase ?? null).toBeNull();
    await recover(s, app, "start", { scenario: sc, dashboard: dash });
  });

  it("update with no change ends in the true state (running: green; killed: red)", async () => {
    const sc = "update with no change";
    const app = await deployApp(s, { prefix: "upd", scenario: sc, dashboard: dash });
    await act(s, "update", { name: app.name, port: app.port });
    await ledger(s, app);
    await settle(s, app, "green", { scenario: `${sc} (running)`, dashboard: dash });
    // No effective change: the image named explicitly is the one the app already runs (the base image).
    await act(s, "update", { name: app.name, image: TEST_IMAGE });
    await ledger(s, app);
    await settle(s, app, "green", { scenario: `${sc} (running, same image named)`, dashboard: dash });
    const [id] = await containersOf(s, app.name);
    await docker(["kill", id!]);
    await settle(s, app, "red", { scenario: `${sc} (killed)`, dashboard: dash });
    await act(s, "update", { name: app.name, startCommand: (await view(s.c, app.name))!.startCommand });
    await act(s, "update", { name: app.name, image: null });
    await ledger(s, app);
    await settle(s, app, "red", { scenario: `${sc} (killed, after update)`, dashboard: dash });
    await recover(s, app, "start", { scenario: sc, dashboard: dash });
  });

  it("restart while a deploy runs: refused as busy or queued behind it, never lost or run twice; ends green", async () => {
    const sc = "restart while a deploy runs";
    s.forge.hold();
    let app: FaultApp;
    try {
      app = await createApp(s, { prefix: "rdep" });
      await poll("the agent's clone to wait at the forge", async () => s.forge.holding > 0, 60_000);
      const r = await s.c.mutate<{ commandId: string | null }>("apps.restart", { name: app.name });
      expect([200, 409], JSON.stringify(r.body)).toContain(r.status);
      if (r.status === 409) expect(r.body.error!.message).toMatch(/busy/);
    } finally {
      s.forge.pass();
    }
    await ledger(s, app, 120_000);
    await settle(s, app, "green", { scenario: sc, dashboard: dash, realityCapMs: 90_000 });
    const rows = await commandsOf(s.c, app.name);
    expect(rows.filter((x) => x.state === "done").length).toBeGreaterThanOrEqual(1);
  });

  it("cancel during a slow clone: the deploy stops, the state is clear; Start deploys it", async () => {
    const sc = "cancel during a slow clone";
    // ~1.5 MB of incompressible text at 16 KB/s: the clone takes minutes unless cancelled.
    const big = randomBytes(1_500_000).toString("base64");
    s.forge.throttle(16 * 1024);
    let app: FaultApp;
    try {
      app = await createApp(s, { prefix: "cncl", files: { "weights.txt": big } });
      await poll("the clone to be under way", async () => s.forge.live > 0, 60_000);
      const t0 = Date.now();
      await act(s, "cancel", { name: app.name });
      const rows = await ledger(s, app, 60_000);
      console.log(`cancel: the deploy ended ${Date.now() - t0} ms after apps.cancel`);
      const deploy = rows.find((r) => r.action === "provision");
      expect(deploy?.state, JSON.stringify(rows)).toBe("failed");
      expect(deploy?.error).toMatch(/cancel/i);
      const { view: v } = await settle(s, app, "red", { scenario: sc, reason: /cancel/i, dashboard: dash });
      expect(v.status).toBe("STOPPED");
      expect(await containersOf(s, app.name)).toEqual([]);
    } finally {
      s.forge.throttle(0);
    }
    await recover(s, app, "start", { scenario: sc, dashboard: dash });
    await ledger(s, app);
  });

  it("an app named `on` runs under compose v1, keeps its label, and recovers", async () => {
    const sc = "app named on";
    const existing = await view(s.c, "on");
    expect(existing).toBeNull();
    const app = await deployApp(s, { name: "on", scenario: sc, dashboard: dash });
    const [id] = await containersOf(s, app.name);
    expect(id).toBeTruthy();
    expect((await inspect(id!)).Config.Labels?.["dcc.app"]).toBe("on");
    await docker(["kill", id!]);
    await settle(s, app, "red", { scenario: sc, dashboard: dash });
    await recover(s, app, "start", { scenario: sc, dashboard: dash });
    // Orphan scan must not take the running `on` for a stranger.
    const scan = await s.c.mutate<{ items?: { name?: string }[] }>("hosts.scanOrphans", { id: s.hostId });
    if (scan.status === 200) expect(JSON.stringify(scan.body.result?.data ?? {})).not.toMatch(/"on"|\/on\b/);
    expect(await probe(app)).toBe(true);
    await act(s, "deinstall", { name: "on" });
    await poll("`on` gone", async () => (await view(s.c, "on")) === null && (await containersOf(s, "on")).length === 0, 60_000);
  });

  it("the app's port taken by a non-Docker process: red naming the port; freed, Start deploys it", async () => {
    const sc = "port taken by another process";
    const squatter: Server = createServer((sock) => sock.end("not the app\n"));
    const port = await new Promise<number>((r) => squatter.listen(0, "0.0.0.0", () => r((squatter.address() as { port: number }).port)));
    let app: FaultApp;
    try {
      app = await createApp(s, { prefix: "port", port });
      await attemptOver(app);
      const r = await reality(s, app);
      expect(r.serving).toBe(false);
      await settle(s, app, "red", { scenario: sc, reason: new RegExp(`port|${port}|address already in use|allocated`, "i"), dashboard: dash });
    } finally {
      await new Promise((r) => squatter.close(r));
    }
    await recover(s, app, "start", { scenario: sc, dashboard: dash });
    await ledger(s, app);
  });
});
