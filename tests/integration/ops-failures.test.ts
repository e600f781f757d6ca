// Failures are clear and leave no container behind: unreachable or missing repository, port
// taken, missing image, failing install command, and a start command that exits at once. A failed
// first deploy keeps the app's record (STOPPED, with the reason) and a completed clone for the
// retry; deinstall then leaves nothing.
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { docker, listByLabel } from "../support/docker";
import { freePort } from "../support/net";
import { CommandFailed, opsFixture, progressRecorder, uniqueName, type OpsFixture } from "./ops-fixture";
import { exists } from "../support/fs";

let fx: OpsFixture;
beforeAll(async () => {
  fx = await opsFixture();
});
afterAll(async () => {
  await fx?.close();
});

async function expectNothingLeft(name: string): Promise<void> {
  expect(await listByLabel(`dcc.app=${name}`)).toEqual([]);
  expect(await docker(["network", "ls", "-q", "--filter", `label=dcc.app=${name}`])).toBe("");
  expect(await exists(join(fx.root, name))).toBe(false);
  expect(await exists(join(fx.stateDir, "git", `${name}.git`))).toBe(false);
  expect(await exists(join(fx.stateDir, "compose", name))).toBe(false);
  expect(await exists(join(fx.stateDir, "apps", `${name}.json`))).toBe(false);
  expect((await fx.ops.inventory()).map((i) => i.app)).not.toContain(name);
}

/** After a failed first deploy: no container or network; the record says not provisioned; the clone is kept only if it completed. */
async function expectFailedDeploy(name: string, why: RegExp, cloneKept: boolean): Promise<void> {
  expect(await listByLabel(`dcc.app=${name}`)).toEqual([]);
  expect(await docker(["network", "ls", "-q", "--filter", `label=dcc.app=${name}`])).toBe("");
  expect(await exists(join(fx.stateDir, "compose", name))).toBe(false);
  expect(await exists(join(fx.root, name))).toBe(cloneKept);
  expect(await exists(join(fx.stateDir, "git", `${name}.git`))).toBe(cloneKept);
  const record = JSON.parse(await readFile(join(fx.stateDir, "apps", `${name}.json`), "utf8"));
  expect(record.provisioned).toBe(false);
  expect(record.branch !== null).toBe(cloneKept);
  const item = (await fx.ops.inventory()).find((i) => i.app === name);
  expect(item).toMatchObject({ status: "STOPPED", containerState: null, observed: { status: "STOPPED" } });
  expect(item?.observed?.lastError).toMatch(why);
  // deinstall removes all of it
  await fx.apply(name, "deinstall", {});
  await expectNothingLeft(name);
}

async function provisionError(name: string, spec: ReturnType<OpsFixture["spec"]>): Promise<CommandFailed> {
  const err = await fx.apply(name, "provision", { spec }).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CommandFailed);
  // the answer carries the app's observation: STOPPED with the reason
  expect((err as CommandFailed).observed).toMatchObject({ app: name, status: "STOPPED", lastError: (err as CommandFailed).message });
  return err as CommandFailed;
}

describe("failed deploys on a real Docker engine", () => {
  it("an unreachable repository host", async () => {
    const name = uniqueName("unreach");
    const closed = await freePort();
    const err = await provisionError(name, fx.spec(name, `http://127.0.0.1:${closed}/nothing.git`, await freePort()));
    expect(err.message).toMatch(/cannot be reached/);
    const failed = fx.reports.filter((r) => r.app === name).at(-1);
    expect(failed).toMatchObject({ status: "STOPPED" });
    expect(failed?.lastError).toMatch(/cannot be reached/);
    await expectFailedDeploy(name, /cannot be reached/, false);
  });

  it("a repository that does not exist", async () => {
    const name = uniqueName("missing");
    const err = await provisionError(name, fx.spec(name, `${fx.git.url}/no-such-repo.git`, await freePort()));
    expect(err.message).toMatch(/not found/);
    await expectFailedDeploy(name, /not found/, false);
  });

  it("a port already taken on the host", async () => {
    const name = uniqueName("porttaken");
    const repo = await fx.git.createRepo(name, { "index.html": "x\n" });
    const port = await freePort();
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(port, "0.0.0.0", () => r()));
    try {
      const err = await provisionError(name, fx.spec(name, repo.url, port));
      expect(err.message).toBe(`port ${port} is already in use on this host`);
    } finally {
      blocker.close();
    }
    await expectFailedDeploy(name, /is already in use/, false);
  });

  it("an image that is not on the host with no registry to pull from", async () => {
    const name = uniqueName("noimage");
    const repo = await fx.git.createRepo(name, { "index.html": "x\n" });
    const err = await provisionError(name, fx.spec(name, repo.url, await freePort(), { image: "dcc-test/not-there:1" }));
    expect(err.message).toMatch(/image dcc-test\/not-there:1 is not on this host and could not be pulled/);
    await expectFailedDeploy(name, /could not be pulled/, false);
  });

  it("an install command that fails: its output is reported, no container is left, the clone is kept", async () => {
    const name = uniqueName("badinstall");
    const repo = await fx.git.createRepo(name, { "index.html": "x\n" });
    const { progress, onProgress } = progressRecorder();
    const spec = fx.spec(name, repo.url, await freePort(), { installCommand: "echo resolving dependencies; echo 'No matching distribution' >&2; exit 4" });
    const err = await fx.apply(name, "provision", { spec }, onProgress).then(() => null, (e: unknown) => e as CommandFailed);
    expect(err?.message).toMatch(/install command exited with code 4/);
    expect(err?.message).toContain("No matching distribution");
    const output = progress.filter((p) => p.step === "install").flatMap((p) => p.output ?? []);
    expect(output).toEqual(expect.arrayContaining(["resolving dependencies", "No matching distribution"]));
    await expectFailedDeploy(name, /install command exited with code 4/, true);
  });

  it("an install command that succeeds runs once before the app, as the app's user in /app", async () => {
    const name = uniqueName("install");
    const repo = await fx.git.createRepo(name, { "index.html": "x\n" });
    const { progress, onProgress } = progressRecorder();
    const port = await freePort();
    const spec = fx.spec(name, repo.url, port, { installCommand: 'echo "installing as $(id -u) in $(pwd) home=$HOME"; echo done > /app/installed.txt' });
    await fx.apply(name, "provision", { spec }, onProgress);
    const output = progress.filter((p) => p.step === "install").flatMap((p) => p.output ?? []);
    expect(output.join("\n")).toMatch(/installing as [1-9]\d* in \/app home=\/app/);
    expect(await readFile(join(fx.root, name, "installed.txt"), "utf8")).toBe("done\n");
    // the one-off install container is gone; only the app's container remains
    expect(await listByLabel(`dcc.app=${name}`)).toHaveLength(1);
    await fx.waitForStatus(name, (r) => r.status === "RUNNING");
    await fx.apply(name, "deinstall", {});
    await expectNothingLeft(name);
  });

  it("a start command that exits at once is STOPPED with its last lines", async () => {
    const name = uniqueName("crash");
    const repo = await fx.git.createRepo(name, { "index.html": "x\n" });
    const spec = fx.spec(name, repo.url, await freePort(), { startCommand: 'echo "loading model"; echo "fatal: model weights not found" >&2; exit 3' });
    const from = fx.reports.length;
    await fx.apply(name, "provision", { spec });
    const stopped = await fx.waitForStatus(name, (r) => r.status === "STOPPED" && r.exitCode === 3, { from, timeoutMs: 10_000 });
    expect(stopped.lastError).toMatch(/exited with code 3/);
    expect(stopped.lastError).toContain("fatal: model weights not found");
    // Docker's restart policy brings it back; it stays red while it crash-loops.
    await new Promise((r) => setTimeout(r, 1500));
    const latest = fx.ops.observer.current(name);
    expect(latest?.status).toBe("STOPPED");
    expect(latest?.lastError).toContain("fatal: model weights not found");
    expect(fx.reports.slice(from).filter((r) => r.app === name && r.status === "RUNNING")).toEqual([]);
    await fx.apply(name, "deinstall", {});
    await expectNothingLeft(name);
  });
});
