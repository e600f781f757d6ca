// What a container or a repository must not be able to do to the agent: read its environment
// through compose interpolation, steer its next git run, or change what compose runs.
import { execFile } from "node:child_process";
import { lstat, readdir, readlink, stat } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import type { LogLine } from "../../agent/src/contract/reports";
import { inspect, listByLabel, waitFor } from "../support/docker";
import { freePort } from "../support/net";
import { TEST_IMAGE, commitSymlink, fetchText, opsFixture, uniqueName, type OpsFixture } from "./ops-fixture";
import { exists } from "../support/fs";

const execFileAsync = promisify(execFile);
let fx: OpsFixture;
beforeAll(async () => {
  fx = await opsFixture();
});
afterAll(async () => {
  delete process.env.SOME_SECRET;
  await fx?.close();
});

function logsOf(name: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const lines: LogLine[] = [];
    fx.ops.streamLogs(name, { tail: 200, follow: false }, (l) => lines.push(l), (err) => (err ? reject(err) : resolve(lines.map((l) => l.line).join("\n"))));
  });
}

describe("ops security on a real Docker engine", () => {
  it("a start command with ${SOME_SECRET} sees nothing of the agent's environment", async () => {
    process.env.SOME_SECRET = "agent-secret-6b1f0c";
    const name = uniqueName("secret");
    const repo = await fx.git.createRepo(name, { "index.html": "ok\n" });
    const port = await freePort();
    const spec = fx.spec(name, repo.url, port, {
      startCommand: 'echo "braced=[${SOME_SECRET}] bare=[$SOME_SECRET] home=[$HOME] port=[$PORT]"; env; exec httpd -f -p $PORT -h /app',
    });
    await fx.apply(name, "provision", { spec });
    await waitFor(() => fetchText(port));
    const out = await waitFor(() => logsOf(name).then((t) => t.includes("braced=") && t));
    expect(out).toContain(`braced=[] bare=[] home=[/app] port=[${port}]`);
    expect(out).not.toContain("agent-secret-6b1f0c");
    expect(out).not.toMatch(/^SOME_SECRET=/m);
    await fx.apply(name, "deinstall", {});
  });

  it("a container cannot steer the agent's next git run (.git pointer, hooks, config)", async () => {
    const name = uniqueName("gitdir");
    // The app plants a .git pointer to a git dir it controls, with hooks and an fsmonitor command
    // that would write PWNED-* files if the host's git ever ran them.
    const evil = [
      "#!/bin/sh",
      "mkdir -p /app/fakegit/hooks /app/fakegit/objects /app/fakegit/refs/heads",
      "echo 'ref: refs/heads/main' > /app/fakegit/HEAD",
      "printf '[core]\\n\\trepositoryformatversion = 0\\n\\tbare = false\\n\\thooksPath = /app/fakegit/hooks\\n\\tfsmonitor = echo pwned > PWNED-fsmonitor\\n' > /app/fakegit/config",
      "printf '#!/bin/sh\\necho pwned > PWNED-hook\\n' > /app/fakegit/hooks/post-checkout",
      "cp /app/fakegit/hooks/post-checkout /app/fakegit/hooks/post-merge",
      "chmod +x /app/fakegit/hooks/*",
      "echo 'gitdir: fakegit' > /app/.git",
      "echo planted > /app/planted.txt",
      "",
    ].join("\n");
    const repo = await fx.git.createRepo(name, { "index.html": "one\n", "evil.sh": evil });
    const port = await freePort();
    const spec = fx.spec(name, repo.url, port, { startCommand: "sh /app/evil.sh; exec httpd -f -p $PORT -h /app" });
    await fx.apply(name, "provision", { spec });
    const workspace = join(fx.root, name);
    await waitFor(() => exists(join(workspace, "planted.txt")));
    expect((await stat(join(workspace, ".git"))).isFile()).toBe(true);

    const sha2 = await fx.git.commit(name, { "index.html": "two\n" });
    const result = await fx.apply(name, "reinstall", { spec, clean: false });
    expect(result.commitSha).toBe(sha2);
    expect(await waitFor(() => fetchText(port).then((t) => t.includes("two") && t))).toBe("two\n");
    const files = await readdir(workspace);
    expect(files.filter((f) => f.startsWith("PWNED"))).toEqual([]);
    // Our git dir still names the new commit; the planted one was never touched.
    const { stdout } = await execFileAsync("git", ["--git-dir", join(fx.stateDir, "git", `${name}.git`), "rev-parse", "HEAD"]);
    expect(stdout.trim()).toBe(sha2);
    expect(await exists(join(workspace, "fakegit", "refs", "heads", "main"))).toBe(false);
    await fx.apply(name, "deinstall", {});
  });

  it("a malicious repository (compose files, .env with COMPOSE_FILE, symlink to /etc/shadow) changes nothing", async () => {
    const name = uniqueName("malrepo");
    const hostShadow = await stat("/etc/shadow").catch(() => null);
    const repo = await fx.git.createRepo(name, {
      "index.html": "the real app\n",
      "docker-compose.yml": "services:\n  app:\n    image: evil/image:1\n    privileged: true\n    network_mode: host\n    volumes: ['/:/host']\n",
      "docker-compose.override.yml": "services:\n  app:\n    privileged: true\n    volumes: ['/var/run/docker.sock:/var/run/docker.sock']\n    environment: [EVIL=1]\n",
      ".env": "COMPOSE_FILE=docker-compose.yml:docker-compose.override.yml\nCOMPOSE_PROJECT_NAME=evil\nPORT=1\n",
    });
    await commitSymlink(fx.git, name, "shadow", "/etc/shadow");
    const port = await freePort();
    const spec = fx.spec(name, repo.url, port);
    await fx.apply(name, "provision", { spec });
    expect(await waitFor(() => fetchText(port))).toBe("the real app\n");

    const ids = await listByLabel(`dcc.app=${name}`);
    expect(ids).toHaveLength(1);
    const info = await inspect(ids[0]!);
    expect(info.Config.Image).toBe(TEST_IMAGE);
    expect(info.HostConfig.Privileged).toBe(false);
    expect(info.HostConfig.NetworkMode).not.toBe("host");
    expect(info.Mounts.map((m) => m.Destination).sort()).toEqual(["/app", "/run/dcc-secrets"]);
    expect(info.Mounts.find((m) => m.Destination === "/run/dcc-secrets")?.RW).toBe(false);
    expect(info.Config.Env).not.toContain("EVIL=1");
    expect(info.Config.Labels?.["com.docker.compose.project"]).toBe(name);

    // The link is checked out as a link; the agent's chown did not follow it, and the app
    // cannot read the host's file through it.
    const workspace = join(fx.root, name);
    expect((await lstat(join(workspace, "shadow"))).isSymbolicLink()).toBe(true);
    expect(await readlink(join(workspace, "shadow"))).toBe("/etc/shadow");
    if (hostShadow) {
      const now = await stat("/etc/shadow");
      expect([now.uid, now.gid, now.mode]).toEqual([hostShadow.uid, hostShadow.gid, hostShadow.mode]);
    }
    await expect(fetchText(port, "/shadow")).rejects.toThrow();
    await fx.apply(name, "deinstall", {});
    expect(await exists("/etc/shadow")).toBe(hostShadow !== null);
  });
});
