// Proves the smart-HTTP git test server with the real git CLI: shallow clone, follow-up fetch, protocol v0/v2, gzip bodies.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGitServer, type GitServer } from "./git-server";

const execFileAsync = promisify(execFile);

const clientEnv: NodeJS.ProcessEnv = {
  NODE_ENV: "test",
  PATH: process.env.PATH ?? "/usr/bin:/bin",
  HOME: process.env.HOME ?? tmpdir(),
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_TERMINAL_PROMPT: "0",
  GIT_ALLOW_PROTOCOL: "http",
};

async function git(args: string[], cwd?: string): Promise<string> {
  const { stdout } = await execFileAsync("git", args, { cwd, env: clientEnv });
  return stdout.trim();
}

function post(url: string, headers: Record<string, string>, body: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", headers: { ...headers, "Content-Length": String(body.length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("latin1") }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("git smart-HTTP test server", () => {
  let server: GitServer;
  let tmp: string;

  beforeAll(async () => {
    server = await startGitServer();
    tmp = await mkdtemp(join(tmpdir(), "dcc-git-client-"));
  });

  afterAll(async () => {
    await server?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it("serves a shallow clone and a later commit over HTTP", async () => {
    const { url, sha } = await server.createRepo("demo", {
      "README.md": "hello\n",
      "app/run.sh": "#!/bin/sh\necho v1\n",
    });
    expect(url).toBe(`${server.url}/demo.git`);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/demo\.git$/);
    expect(sha).toMatch(/^[0-9a-f]{40}$/);
    expect(await server.headSha("demo")).toBe(sha);

    const dest = join(tmp, "clone");
    await git(["clone", "-q", "--depth", "1", url, dest]);
    expect(await git(["rev-parse", "HEAD"], dest)).toBe(sha);
    expect(await git(["rev-parse", "--abbrev-ref", "HEAD"], dest)).toBe("main");
    expect(await git(["rev-parse", "--is-shallow-repository"], dest)).toBe("true");
    expect(await readFile(join(dest, "app/run.sh"), "utf8")).toContain("echo v1");

    const sha2 = await server.commit("demo", { "app/run.sh": "#!/bin/sh\necho v2\n", "new.txt": "new\n" }, "Second");
    expect(sha2).not.toBe(sha);
    expect(await server.headSha("demo")).toBe(sha2);

    await git(["fetch", "-q", "--depth", "1", "origin", "main"], dest);
    expect(await git(["rev-parse", "FETCH_HEAD"], dest)).toBe(sha2);
    await git(["reset", "-q", "--hard", "FETCH_HEAD"], dest);
    expect(await readFile(join(dest, "app/run.sh"), "utf8")).toContain("echo v2");
    expect(await readFile(join(dest, "new.txt"), "utf8")).toBe("new\n");
  });

  it("answers ls-remote with protocol v0 and v2", async () => {
    const { url, sha } = await server.createRepo("proto", { "a.txt": "a\n" });
    for (const version of ["0", "2"]) {
      const out = await git(["-c", `protocol.version=${version}`, "ls-remote", url]);
      expect(out).toContain(`${sha}\trefs/heads/main`);
      expect(out).toContain(`${sha}\tHEAD`);
    }
  });

  it("accepts gzip-encoded request bodies", async () => {
    const { url, sha } = await server.createRepo("gzip", { "a.txt": "a\n" });
    // protocol v2 ls-refs request as pkt-lines: "command=ls-refs\n" then a flush packet.
    const body = gzipSync(Buffer.from("0014command=ls-refs\n0000"));
    const res = await post(
      `${url}/git-upload-pack`,
      {
        "Content-Type": "application/x-git-upload-pack-request",
        "Content-Encoding": "gzip",
        "Git-Protocol": "version=2",
      },
      body,
    );
    expect(res.status).toBe(200);
    expect(res.body).toContain(`${sha} refs/heads/main`);
  });

  it("returns 404 for a repository that does not exist and refuses bad names", async () => {
    const res = await fetch(`${server.url}/missing.git/info/refs?service=git-upload-pack`);
    expect(res.status).toBe(404);
    await expect(git(["ls-remote", `${server.url}/missing.git`])).rejects.toThrow();
    await expect(server.createRepo("../escape", {})).rejects.toThrow(/bad repo name/);
    await expect(server.commit("demo", { "../x": "y" })).rejects.toThrow(/refusing file path/);
  });
});
