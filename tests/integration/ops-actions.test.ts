// The whole life of an app on the real Docker engine through AppManager: provision, external
// kill seen on the event stream, start, reinstall to a new commit keeping untracked files,
// deinstall leaving nothing behind.
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { docker, inspect, listByLabel, waitFor } from "../support/docker";
import { freePort } from "../support/net";
import { fetchText, opsFixture, progressRecorder, uniqueName, type OpsFixture } from "./ops-fixture";
import { exists } from "../support/fs";

let fx: OpsFixture;
beforeAll(async () => {
  fx = await opsFixture();
});
afterAll(async () => {
  await fx?.close();
});

describe("app lifecycle on a real Docker engine", () => {
  it("provision → kill → start → reinstall → deinstall", async () => {
    const name = uniqueName("life");
    const repo = await fx.git.createRepo(name, { "index.html": "<h1>version one</h1>\n" });
    const port = await freePort();
    const spec = fx.spec(name, repo.url, port);
    const { progress, onProgress } = progressRecorder();

    // provision: cloned at the repo's commit, container running, port serving the repo's file
    const provisioned = await fx.apply(name, "provision", { spec }, onProgress);
    expect(provisioned.commitSha).toBe(repo.sha);
    expect(progress.some((p) => p.step === "clone" && p.pct === 100)).toBe(true);
    expect(progress.some((p) => p.step === "start")).toBe(true);
    expect(await waitFor(() => fetchText(port), { timeoutMs: 10_000 })).toContain("version one");
    await fx.waitForStatus(name, (r) => r.status === "RUNNING" && r.health === "reachable");
    const workspace = join(fx.root, name);
    expect(await exists(join(workspace, ".git"))).toBe(false);
    expect(await exists(join(fx.stateDir, "git", `${name}.git`, "HEAD"))).toBe(true);

    // least privilege as Docker sees it
    const [id] = await listByLabel(`dcc.app=${name}`);
    const info = await inspect(id!);
    expect(info.Config.User).toMatch(/^[1-9]\d*:\d+$/);
    expect(info.HostConfig.CapDrop).toEqual(["ALL"]);
    expect(info.HostConfig.SecurityOpt).toContain("no-new-privileges:true");
    expect(info.HostConfig.Privileged).toBe(false);
    expect(info.HostConfig.NetworkMode).not.toBe("host");
    expect(info.HostConfig.PidMode).toBe("");
    expect(info.HostConfig.RestartPolicy).toMatchObject({ Name: "unless-stopped" });
    // The workspace, and the agent's secrets folder of the app (read-only), nothing else.
    expect(info.Mounts).toHaveLength(2);
    expect(info.Mounts.find((m) => m.Destination === "/app")).toMatchObject({ Type: "bind", Source: workspace, RW: true });
    expect(info.Mounts.find((m) => m.Destination === "/run/dcc-secrets")).toMatchObject({ Type: "bind", RW: false });
    expect(JSON.stringify(info.Mounts)).not.toContain("docker.sock");
    expect(info.Config.Env).toEqual(expect.arrayContaining(["HOME=/app", `PORT=${port}`]));
    expect(info.Config.Labels).toMatchObject({ "dcc.app": name, "dcc.host": fx.hostId, "dcc.managed": "true", "dcc.app-id": spec.appId });

    // provisioning again with the same spec changes nothing
    expect(await fx.apply(name, "provision", { spec })).toMatchObject({ commitSha: repo.sha, message: "already provisioned" });
    expect(await listByLabel(`dcc.app=${name}`)).toEqual([id]);

    // killed from outside: STOPPED arrives from the event stream
    const beforeKill = fx.reports.length;
    await docker(["kill", id!]);
    const stopped = await fx.waitForStatus(name, (r) => r.status === "STOPPED", { from: beforeKill, timeoutMs: 5000 });
    expect(stopped.exitCode).toBe(137);
    expect(stopped.lastError).toMatch(/killed/);
    expect((await fx.ops.inventory()).find((i) => i.app === name)).toMatchObject({ status: "STOPPED", commitSha: repo.sha });

    // start: RUNNING again
    const beforeStart = fx.reports.length;
    await fx.apply(name, "start", {});
    await fx.waitForStatus(name, (r) => r.status === "RUNNING", { from: beforeStart });
    expect(await waitFor(() => fetchText(port))).toContain("version one");

    // reinstall: new commit served, untracked files kept
    const sha2 = await fx.git.commit(name, { "index.html": "<h1>version two</h1>\n" });
    await mkdir(join(workspace, "models"), { recursive: true });
    await writeFile(join(workspace, "models", "weights.bin"), "untracked model data");
    const reinstalled = await fx.apply(name, "reinstall", { spec, clean: false }, onProgress);
    expect(reinstalled.commitSha).toBe(sha2);
    expect(await waitFor(() => fetchText(port).then((t) => t.includes("version two") && t))).toContain("version two");
    expect(await readFile(join(workspace, "models", "weights.bin"), "utf8")).toBe("untracked model data");
    await fx.waitForStatus(name, (r) => r.status === "RUNNING" && r.commitSha === sha2);
    const [id2] = await listByLabel(`dcc.app=${name}`);
    expect(id2).not.toBe(id); // recreated

    // stop twice is fine; the second is a no-op
    await fx.apply(name, "stop", {});
    await fx.apply(name, "stop", {});
    expect((await inspect(id2!)).State.Running).toBe(false);
    const afterStop = fx.ops.observer.current(name);
    expect(afterStop).toMatchObject({ status: "STOPPED", lastError: null });

    // clean reinstall wipes untracked files, except the paths the spec keeps
    await mkdir(join(workspace, "outputs", "run1"), { recursive: true });
    await writeFile(join(workspace, "outputs", "run1", "image.png"), "generated");
    await fx.apply(name, "reinstall", { spec: { ...spec, keepPaths: ["outputs"] }, clean: true });
    expect(await exists(join(workspace, "models"))).toBe(false);
    expect(await readFile(join(workspace, "outputs", "run1", "image.png"), "utf8")).toBe("generated");
    expect(await exists(join(workspace, "index.html"))).toBe(true);
    expect(await waitFor(() => fetchText(port))).toContain("version two");

    // deinstall: nothing left; twice is fine
    await fx.apply(name, "deinstall", {});
    expect(await listByLabel(`dcc.app=${name}`)).toEqual([]);
    expect(await docker(["network", "ls", "-q", "--filter", `label=dcc.app=${name}`])).toBe("");
    expect(await docker(["network", "ls", "-q", "--filter", `name=${name}_default`])).toBe("");
    expect(await exists(workspace)).toBe(false);
    expect(await exists(join(fx.stateDir, "git", `${name}.git`))).toBe(false);
    expect(await exists(join(fx.stateDir, "compose", name))).toBe(false);
    expect(await exists(join(fx.stateDir, "apps", `${name}.json`))).toBe(false);
    expect(await fx.apply(name, "deinstall", {})).toMatchObject({ message: "not installed" });
    expect((await fx.ops.inventory()).find((i) => i.app === name)).toBeUndefined();
    await expect(stat(fx.root)).resolves.toBeTruthy();
  });

  it("update recreates with the new settings, restart keeps it running, logs follow live, usage is sampled", async () => {
    const name = uniqueName("upd");
    const repo = await fx.git.createRepo(name, { "index.html": "<p>update me</p>\n" });
    const port = await freePort();
    const spec = fx.spec(name, repo.url, port, {
      startCommand: "(while true; do echo tick; sleep 0.2; done) & exec httpd -f -p $PORT -h /app",
    });
    await fx.apply(name, "provision", { spec });
    await fx.waitForStatus(name, (r) => r.status === "RUNNING");

    // logs: follow delivers new lines until stopped
    const lines: string[] = [];
    const stop = fx.ops.streamLogs(name, { tail: 1, follow: true }, (l) => lines.push(l.line));
    await waitFor(() => lines.filter((l) => l === "tick").length >= 3, { timeoutMs: 5000 });
    stop();
    const count = lines.length;
    await new Promise((r) => setTimeout(r, 600));
    expect(lines.length).toBe(count);
    expect((await fx.ops.tailLogs(name, 2)).map((l) => l.line)).toEqual(["tick", "tick"]);

    // usage: CPU and memory samples for the running app
    const sample = await waitFor(() => fx.usage.find((u) => u.app === name), { timeoutMs: 8000 });
    expect(sample.memoryBytes).toBeGreaterThan(0);
    expect(sample.cpuPct).toBeGreaterThanOrEqual(0);

    // restart: same container, running again
    const [id] = await listByLabel(`dcc.app=${name}`);
    const beforeRestart = fx.reports.length;
    await fx.apply(name, "restart", {});
    await fx.waitForStatus(name, (r) => r.status === "RUNNING", { from: beforeRestart });
    expect(await listByLabel(`dcc.app=${name}`)).toEqual([id]);

    // update: new port and start command, container recreated; the same update again is a no-op
    const port2 = await freePort();
    const updated = { ...spec, port: port2, startCommand: "exec httpd -f -p $PORT -h /app" };
    expect(await fx.apply(name, "update", { spec: updated })).toMatchObject({ message: "updated" });
    expect(await waitFor(() => fetchText(port2))).toContain("update me");
    await expect(fetchText(port)).rejects.toThrow();
    const [id2] = await listByLabel(`dcc.app=${name}`);
    expect(id2).not.toBe(id);
    expect((await inspect(id2!)).Config.Env).toContain(`PORT=${port2}`);
    expect(await fx.apply(name, "update", { spec: updated })).toMatchObject({ message: "no change" });
    // the repository of an installed app is fixed
    await expect(fx.apply(name, "update", { spec: { ...updated, repository: `${fx.git.url}/other.git` } })).rejects.toThrow(/cannot change/);

    await fx.apply(name, "deinstall", {});
    expect(await listByLabel(`dcc.app=${name}`)).toEqual([]);
  });
});
