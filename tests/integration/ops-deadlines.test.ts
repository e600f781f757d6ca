// Deadlines, cancel and time limits with real processes: a clone from a server that accepts the
// connection and never answers (the real git child is killed), a cancel of a queued and of a
// running deploy, a command past its deadline, git's own clone time limit, an image pull that
// hangs, and a disk that fills up during the clone (a real small tmpfs as the workspace root).
import { execFile } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { SimpleGitOps } from "../../agent/src/ops/git";
import { exists } from "../support/fs";
import { freePort } from "../support/net";
import { fetchText, opsFixture, uniqueName, type OpsFixture } from "./ops-fixture";
import { docker, waitFor } from "../support/docker";

const execFileAsync = promisify(execFile);

/** Accepts connections and never answers: a registry or forge that hangs. */
class BlackHole {
  server!: Server;
  port = 0;
  readonly open = new Set<Socket>();
  async start(): Promise<void> {
    this.port = await freePort();
    this.server = createServer((s) => {
      this.open.add(s);
      s.on("close", () => this.open.delete(s));
      s.on("error", () => {});
      s.resume(); // read (and ignore) the request, so the peer's close is seen
    });
    await new Promise<void>((r) => this.server.listen(this.port, "127.0.0.1", () => r()));
  }
  async close(): Promise<void> {
    for (const s of this.open) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}

/** git processes still talking to the black hole. */
async function gitChildren(port: number): Promise<string[]> {
  const { stdout } = await execFileAsync("ps", ["-eo", "pid,args"]);
  return stdout.split("\n").filter((l) => /\bgit\b/.test(l) && l.includes(`127.0.0.1:${port}`));
}

let fx: OpsFixture;
let hole: BlackHole;
beforeAll(async () => {
  fx = await opsFixture({ pullTimeoutMs: 1500 });
  hole = new BlackHole();
  await hole.start();
});
afterAll(async () => {
  await hole?.close();
  await fx?.close();
});

describe("deadlines and cancel", () => {
  it("cancel drops a queued command and stops a running clone: git is killed, the app is STOPPED with 'cancelled', nothing half-cloned stays", async () => {
    const name = uniqueName("slow");
    const spec = fx.spec(name, `http://127.0.0.1:${hole.port}/slow.git`, await freePort());
    const deployId = randomUUID();
    const deploy = fx.run(name, "provision", { spec }, { id: deployId });
    await fx.waitForStatus(name, (r) => r.phase === "clone");
    await waitFor(async () => (await gitChildren(hole.port)).length > 0, { timeoutMs: 10_000 });
    const startId = randomUUID();
    const queued = fx.run(name, "start", { spec }, { id: startId });

    const c1 = await fx.run(name, "cancel", { commandId: startId });
    expect(c1).toMatchObject({ ok: true, result: { cancelled: true, target: "queued" } });
    expect(await queued).toMatchObject({ ok: false, error: "cancelled before it ran" });

    const t0 = Date.now();
    const c2 = await fx.run(name, "cancel", { commandId: deployId });
    expect(c2).toMatchObject({ ok: true, result: { cancelled: true, target: "running" }, observed: { app: name, status: "STOPPED", lastError: "cancelled" } });
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(await deploy).toMatchObject({ ok: false, error: "cancelled", observed: { status: "STOPPED", lastError: "cancelled" } });
    expect(await gitChildren(hole.port)).toEqual([]);
    await waitFor(() => hole.open.size === 0, { timeoutMs: 5000, message: "the clone's connection to close" });
    expect(await exists(join(fx.root, name))).toBe(false);
    expect(await exists(join(fx.stateDir, "git", `${name}.git`))).toBe(false);
    // a cancel of something that is no longer there says so
    expect((await fx.run(name, "cancel", { commandId: deployId })).result).toEqual({ cancelled: false, target: "unknown" });
    await fx.apply(name, "deinstall", {});
  });

  it("a deploy past its deadline is aborted and answered with the action, the limit and the host", async () => {
    const name = uniqueName("late");
    const spec = fx.spec(name, `http://127.0.0.1:${hole.port}/late.git`, await freePort());
    const now = Date.now();
    const out = await fx.run(name, "provision", { spec }, { issuedAt: new Date(now).toISOString(), deadlineAt: new Date(now + 2000).toISOString() });
    expect(Date.now() - now).toBeLessThan(10_000);
    expect(out).toMatchObject({
      ok: false,
      error: `deadline passed: provision ran longer than 2 s on host ${fx.hostId}`,
      observed: { status: "STOPPED", lastError: `deadline passed: provision ran longer than 2 s on host ${fx.hostId}` },
    });
    expect(await gitChildren(hole.port)).toEqual([]);
    await fx.apply(name, "deinstall", {});
  });

  it("git's clone time limit (DCC_CLONE_TIMEOUT_S) stops a clone that hangs", async () => {
    const home = await mkdtemp(join(tmpdir(), "dcc-gitto-"));
    try {
      const git = new SimpleGitOps({ homeDir: home, allowInsecure: true, cloneTimeoutMs: 1000, storeDir: join(home, "stores"), gitDirs: join(home, "git") });
      const t0 = Date.now();
      const err = await git.clone({ url: `http://127.0.0.1:${hole.port}/hang.git`, gitDir: join(home, "g.git"), workTree: join(home, "w") }).catch((e: Error) => e);
      expect((err as Error).message).toBe("git clone timed out after 1 s");
      expect(Date.now() - t0).toBeLessThan(8000);
      expect(await gitChildren(hole.port)).toEqual([]);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  it("an image pull that hangs is stopped at the pull time limit (DCC_PULL_TIMEOUT_S)", async () => {
    const name = uniqueName("pull");
    const repo = await fx.git.createRepo(name, { "index.html": "x\n" });
    const image = `127.0.0.1:${hole.port}/stuck/image:1`;
    const t0 = Date.now();
    const out = await fx.run(name, "provision", { spec: fx.spec(name, repo.url, await freePort(), { image }) });
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(out).toMatchObject({ ok: false, error: `pulling image ${image} took longer than 2 s and was stopped`, observed: { status: "STOPPED" } });
    await fx.apply(name, "deinstall", {});
  });
});

describe("cancel during the install command", () => {
  it("kills the install container and puts the previous version back, running", async () => {
    const name = uniqueName("inst");
    const repo = await fx.git.createRepo(name, { "index.html": "version one\n" });
    const port = await freePort();
    const spec = fx.spec(name, repo.url, port);
    await fx.apply(name, "provision", { spec });
    expect(await waitFor(() => fetchText(port))).toBe("version one\n");
    await fx.git.commit(name, { "index.html": "version two\n" });

    const id = randomUUID();
    const from = fx.reports.length;
    const reinstall = fx.run(name, "reinstall", { spec: { ...spec, installCommand: "echo downloading; sleep 300" } }, { id });
    await fx.waitForStatus(name, (r) => r.phase === "install", { from });
    await waitFor(async () => (await docker(["ps", "-q", "--filter", `name=${name}-install`])) !== "", { timeoutMs: 10_000 });
    const t0 = Date.now();
    expect((await fx.run(name, "cancel", { commandId: id })).result).toEqual({ cancelled: true, target: "running" });
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(await reinstall).toMatchObject({ ok: false, error: "cancelled", observed: { status: "RUNNING", containerState: "running", commitSha: repo.sha } });
    expect(await docker(["ps", "-aq", "--filter", `name=${name}-install`])).toBe("");
    expect(await waitFor(() => fetchText(port))).toBe("version one\n");
    await fx.apply(name, "deinstall", {});
  });
});

describe("disk full during the clone", () => {
  it("answers ENOSPC as a failed result with the reason; once there is room, start with the spec deploys it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "dcc-tmpfs-"));
    await execFileAsync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", dir]);
    const small = await opsFixture({ workspaceRoot: dir });
    try {
      const name = uniqueName("full");
      // ~3 MB that does not compress: the objects fit in the agent's state dir, the work tree does not fit on the 1 MB disk
      const repo = await small.git.createRepo(name, { "index.html": "room\n", "weights.txt": randomBytes(2_400_000).toString("base64") });
      const port = await freePort();
      const spec = small.spec(name, repo.url, port);
      const out = await small.run(name, "provision", { spec });
      expect(out).toMatchObject({ ok: false, observed: { app: name, status: "STOPPED" } });
      expect(out.error).toMatch(/no space left on the disk holding the workspace/);
      expect(out.observed?.lastError).toMatch(/no space left on the disk holding the workspace/);

      await execFileAsync("mount", ["-o", "remount,size=32m", dir]);
      expect(await small.run(name, "start", { spec })).toMatchObject({ ok: true, result: { commitSha: repo.sha } });
      expect(await waitFor(() => fetchText(port))).toBe("room\n");
      await small.apply(name, "deinstall", {});
    } finally {
      await small.close();
      await execFileAsync("umount", [dir]).catch(() => {});
      await rm(dir, { recursive: true, force: true });
    }
  });
});
