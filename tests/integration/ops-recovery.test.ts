// Every action recovers from every state, on the real engine and a real smart-HTTP git server,
// through the agent's dispatcher: each answer carries the app's observation, no-ops included.
// A failed first deploy is fixed by update/start with the spec; a retry reuses the clone; a
// reinstall or update that fails leaves the previous version running; update on a stopped app
// does not start it; a port held by a non-Docker process is named; an app named `on` runs on
// compose v1; a lost workspace is deployed again.
import { mkdir, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { Ops } from "../../agent/src/ops/ops";
import { docker, inspect, listByLabel, waitFor } from "../support/docker";
import { exists } from "../support/fs";
import { freePort } from "../support/net";
import { fetchText, opsFixture, progressRecorder, uniqueName, type OpsFixture } from "./ops-fixture";

let fx: OpsFixture;
beforeAll(async () => {
  fx = await opsFixture();
});
afterAll(async () => {
  await fx?.close();
});

const listen = async (port: number): Promise<Server> => {
  const s = createServer();
  await new Promise<void>((r) => s.listen(port, "0.0.0.0", () => r()));
  return s;
};

describe("recoverable from every state", () => {
  it("no-ops answer the true state: start on a running app, update with no change, provision again", async () => {
    const name = uniqueName("noop");
    const repo = await fx.git.createRepo(name, { "index.html": "up\n" });
    const spec = fx.spec(name, repo.url, await freePort());
    const first = await fx.run(name, "provision", { spec });
    expect(first).toMatchObject({ ok: true, observed: { app: name, commitSha: repo.sha } });
    await fx.waitForStatus(name, (r) => r.status === "RUNNING" && r.health === "reachable");

    for (const [action, params, message] of [
      ["start", { spec }, "already running"],
      ["update", { spec }, "no change"],
      ["provision", { spec }, "already provisioned"],
      ["restart", {}, "restarted"],
    ] as const) {
      const out = await fx.run(name, action, params);
      expect(out, action).toMatchObject({ ok: true, result: { message } });
      if (action !== "restart") expect(out.observed, action).toMatchObject({ status: "RUNNING", health: "reachable", containerState: "running", lastError: null, phase: null });
      else expect(out.observed?.containerState).toBe("running");
    }
    // stop on a stopped app: STOPPED without a reason
    await fx.run(name, "stop", {});
    expect(await fx.run(name, "stop", {})).toMatchObject({ ok: true, observed: { status: "STOPPED", lastError: null } });
    // A forced removal's leftover deinstall names the removed app's id: another app now holding
    // the name is left alone; the right id removes it.
    expect(await fx.run(name, "deinstall", { appId: "some-older-app" })).toMatchObject({ ok: true, result: { message: expect.stringMatching(/^not removed/) } });
    expect(await listByLabel(`dcc.app=${name}`)).toHaveLength(1);
    expect(await fx.run(name, "deinstall", { appId: spec.appId })).toMatchObject({ ok: true, result: { message: "deinstalled" } });
    expect(await listByLabel(`dcc.app=${name}`)).toHaveLength(0);
  });

  it("an image that cannot be pulled, then fixed by update; a failed install retried reuses the clone", async () => {
    const name = uniqueName("fixme");
    const repo = await fx.git.createRepo(name, { "index.html": "fixed\n" });
    const port = await freePort();
    const bad = fx.spec(name, repo.url, port, { image: "dcc-test/not-there:1" });
    const failed = await fx.run(name, "provision", { spec: bad });
    expect(failed).toMatchObject({ ok: false, observed: { status: "STOPPED", lastError: expect.stringMatching(/could not be pulled/) } });
    // an agent restarted now still says why (the reason is kept in the app's record)
    const restarted = await Ops.create({ workspaceRoot: fx.root, stateDir: fx.stateDir, hostId: fx.hostId, allowInsecureGit: true, exclusive: (_a, t) => t(), log: () => {} });
    expect((await restarted.inventory()).find((i) => i.app === name)).toMatchObject({
      status: "STOPPED",
      observed: { status: "STOPPED", lastError: expect.stringMatching(/could not be pulled/) },
    });
    // start with the (still bad) spec says the same, not "not installed"
    expect((await fx.run(name, "start", { spec: bad })).error).toMatch(/could not be pulled/);

    // an install command that fails after the clone: the clone stays
    const failing = { ...fx.spec(name, repo.url, port), installCommand: "exit 7" };
    expect((await fx.run(name, "update", { spec: failing })).error).toMatch(/install command exited with code 7/);
    expect(await exists(join(fx.stateDir, "git", `${name}.git`, "HEAD"))).toBe(true);

    // fixed by update: deployed from the spec, fetching into the kept clone instead of cloning again
    const { progress, onProgress } = progressRecorder();
    const good = fx.spec(name, repo.url, port, { installCommand: "echo ok > /app/installed" });
    const fixed = await fx.run(name, "update", { spec: good }, { onProgress });
    expect(fixed).toMatchObject({ ok: true, result: { commitSha: repo.sha } });
    expect(progress.some((p) => p.step === "fetch")).toBe(true);
    expect(progress.some((p) => p.step === "clone")).toBe(false);
    expect(await waitFor(() => fetchText(port))).toBe("fixed\n");
    await fx.waitForStatus(name, (r) => r.status === "RUNNING" && r.health === "reachable");
    expect((await fx.ops.inventory()).find((i) => i.app === name)).toMatchObject({ status: "RUNNING", observed: { status: "RUNNING" } });
    await fx.apply(name, "deinstall", {});
  });

  it("start and restart deploy an app whose first deploy failed or whose workspace was lost", async () => {
    const name = uniqueName("lost");
    const repo = await fx.git.createRepo(name, { "index.html": "back\n" });
    const port = await freePort();
    const spec = fx.spec(name, repo.url, port);
    // never installed: start without a spec cannot know what to deploy, with one it deploys
    expect((await fx.run(name, "start", {})).error).toMatch(/not installed on this host/);
    expect(await fx.run(name, "start", { spec })).toMatchObject({ ok: true, result: { commitSha: repo.sha } });
    expect(await waitFor(() => fetchText(port))).toBe("back\n");

    // the workspace is wiped from under the app: restart deploys it again from the kept git dir
    await fx.apply(name, "stop", {});
    await rm(join(fx.root, name), { recursive: true, force: true });
    const again = await fx.run(name, "restart", { spec });
    expect(again).toMatchObject({ ok: true, observed: { containerState: "running" } });
    expect(await waitFor(() => fetchText(port))).toBe("back\n");
    await fx.apply(name, "deinstall", {});
  });

  it("a failed first deploy retried with another repository clones that one afresh", async () => {
    const name = uniqueName("repo");
    const wrong = await fx.git.createRepo(`${name}-wrong`, { "index.html": "wrong\n" });
    const right = await fx.git.createRepo(`${name}-right`, { "index.html": "right\n" });
    const port = await freePort();
    expect((await fx.run(name, "provision", { spec: { ...fx.spec(name, wrong.url, port), installCommand: "exit 3" } })).ok).toBe(false);
    const fixed = await fx.run(name, "update", { spec: fx.spec(name, right.url, port) });
    expect(fixed).toMatchObject({ ok: true, result: { commitSha: right.sha } });
    expect(await waitFor(() => fetchText(port))).toBe("right\n");
    await fx.apply(name, "deinstall", {});
  });

  it("a deploy cut short mid-clone (agent killed) is finished by the re-delivered command", async () => {
    const name = uniqueName("cut");
    const repo = await fx.git.createRepo(name, { "index.html": "finished\n" });
    const port = await freePort();
    const spec = fx.spec(name, repo.url, port);
    // what a SIGKILL during the clone leaves: a record without a branch, half a work tree and git dir
    await mkdir(join(fx.root, name, "half"), { recursive: true });
    await writeFile(join(fx.root, name, "half", "file"), "partial");
    await mkdir(join(fx.stateDir, "git", `${name}.git`), { recursive: true });
    await writeFile(join(fx.stateDir, "apps", `${name}.json`), JSON.stringify({ spec, commitSha: null, branch: null, provisioned: false, updatedAt: new Date().toISOString() }));
    const restarted = await Ops.create({ workspaceRoot: fx.root, stateDir: fx.stateDir, hostId: fx.hostId, allowInsecureGit: true, exclusive: (_a, t) => t(), log: () => {} });
    const again = await restarted.actions.provision(spec, { signal: new AbortController().signal, progress: () => {} });
    expect(again).toMatchObject({ commitSha: repo.sha });
    expect(await waitFor(() => fetchText(port))).toBe("finished\n");
    expect(await exists(join(fx.root, name, "half"))).toBe(false);
    await restarted.actions.deinstall(name, { signal: new AbortController().signal, progress: () => {} });
    restarted.close();
  });

  it("a reinstall whose fetch or install fails leaves the previous version running", async () => {
    const name = uniqueName("keep");
    const repo = await fx.git.createRepo(name, { "index.html": "version one\n" });
    const port = await freePort();
    const spec = fx.spec(name, repo.url, port);
    await fx.apply(name, "provision", { spec });
    expect(await waitFor(() => fetchText(port))).toBe("version one\n");
    const [id] = await listByLabel(`dcc.app=${name}`);

    // fetch fails (repository host unreachable): nothing was stopped
    const closed = await freePort();
    const unreachable = await fx.run(name, "reinstall", { spec: { ...spec, repository: `http://127.0.0.1:${closed}/x.git` } });
    expect(unreachable).toMatchObject({ ok: false, error: expect.stringMatching(/cannot be reached/), observed: { status: "RUNNING", containerState: "running" } });
    expect(await listByLabel(`dcc.app=${name}`)).toEqual([id]);

    // a new commit whose install fails after the stop: the previous commit is checked out again and started
    await fx.git.commit(name, { "index.html": "version two\n" });
    const broken = await fx.run(name, "reinstall", { spec: { ...spec, installCommand: "echo broken; exit 9" } });
    expect(broken).toMatchObject({ ok: false, error: expect.stringMatching(/exited with code 9/), observed: { status: "RUNNING", health: "reachable", commitSha: repo.sha } });
    expect(await waitFor(() => fetchText(port))).toBe("version one\n");
    expect((await fx.run(name, "start", {})).result).toMatchObject({ message: "already running", commitSha: repo.sha });
    await fx.apply(name, "deinstall", {});
  });

  it("update on a stopped app applies the change without starting it; start then runs the new settings", async () => {
    const name = uniqueName("stopped");
    const repo = await fx.git.createRepo(name, { "index.html": "moved\n" });
    const spec = fx.spec(name, repo.url, await freePort());
    await fx.apply(name, "provision", { spec });
    await fx.apply(name, "stop", {});
    const [before] = await listByLabel(`dcc.app=${name}`);
    const port2 = await freePort();
    const out = await fx.run(name, "update", { spec: { ...spec, port: port2 } });
    expect(out).toMatchObject({ ok: true, result: { message: "updated (not started)" }, observed: { status: "STOPPED", lastError: null } });
    const [after] = await listByLabel(`dcc.app=${name}`);
    expect(after).not.toBe(before);
    const info = await inspect(after!);
    expect(info.State.Running).toBe(false);
    expect(info.Config.Env).toContain(`PORT=${port2}`);
    await fx.apply(name, "start", {});
    expect(await waitFor(() => fetchText(port2))).toBe("moved\n");
    await fx.apply(name, "deinstall", {});
  });

  it("start on a port held by a non-Docker process names the port; after it is freed start works", async () => {
    const name = uniqueName("held");
    const repo = await fx.git.createRepo(name, { "index.html": "free\n" });
    const port = await freePort();
    await fx.apply(name, "provision", { spec: fx.spec(name, repo.url, port) });
    await fx.apply(name, "stop", {});
    const holder = await listen(port);
    try {
      const refused = await fx.run(name, "start", {});
      expect(refused).toMatchObject({ ok: false, error: `port ${port} is already in use on this host`, observed: { status: "STOPPED" } });
      expect(refused.observed?.lastError).toBe(`port ${port} is already in use on this host`);
    } finally {
      await new Promise((r) => holder.close(r));
    }
    expect(await fx.run(name, "start", {})).toMatchObject({ ok: true, result: { message: "started" } });
    expect(await waitFor(() => fetchText(port))).toBe("free\n");
    await fx.apply(name, "deinstall", {});
  });

  it("an app named `on` runs on compose v1 with the label dcc.app=on, and the agent sees it", async () => {
    const name = "on";
    const repo = await fx.git.createRepo(uniqueName("on"), { "index.html": "on\n" });
    const port = await freePort();
    const out = await fx.run(name, "provision", { spec: fx.spec(name, repo.url, port) });
    expect(out).toMatchObject({ ok: true, observed: { app: "on", containerState: "running" } });
    const ids = await docker(["ps", "-q", "--filter", `label=dcc.host=${fx.hostId}`, "--filter", "label=dcc.app=on"]);
    expect(ids).not.toBe("");
    expect((await inspect(ids.split("\n")[0]!)).Config.Labels?.["dcc.app"]).toBe("on");
    await fx.waitForStatus("on", (r) => r.status === "RUNNING" && r.health === "reachable");
    expect((await fx.ops.inventory()).find((i) => i.app === "on")).toMatchObject({ status: "RUNNING", containerState: "running" });
    const stopped = fx.reports.length;
    await docker(["kill", ids.split("\n")[0]!]);
    await fx.waitForStatus("on", (r) => r.status === "STOPPED", { from: stopped });
    await fx.apply(name, "deinstall", {});
    expect(await listByLabel(`dcc.host=${fx.hostId}`)).toEqual([]);
  });
});
