// App configuration end to end, with real processes: the built console, the built agent, the real
// Docker engine running a busybox app, and a smart-HTTP git server that requires Basic auth.
// Env values arrive literally; a canary secret reaches the container and nothing else (API answers,
// console and agent logs, database bytes, outbox rows, audit, compose file, container config,
// backup archive); output that prints it shows *** instead; a private clone works with a
// credential, and without one (or with a wrong one) fails with a clear error that never holds the
// token, which is nowhere on disk either.
import { createHash } from "node:crypto";
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AppDto } from "../../app/services/apps.server";
import { dockerAvailable, removeByLabel } from "../support/docker";
import { ROOT, startConsole, type RunningConsole } from "../support/console";
import { startGitServer, type GitServer } from "../support/git-server";
import { freePort } from "../support/net";
import { openSse } from "../support/sse";
import { startAgent, waitFor, type RunningAgent } from "./agents";

const run = promisify(execFile);
const CANARY = "canary-7f1d9c2e-SECRET-VALUE";
const CANARY2 = "canary-second-4b8a-REPLACED";
const GIT_USER = "deploy";
const GIT_TOKEN = "gittoken-3c5e7a9b-CANARY";

let c: RunningConsole;
let git: GitServer;
let agent: RunningAgent;
let hostId: string;
let repoUrl: string;
let port: number;

const getApp = async (name: string) => (await c.query<AppDto>("apps.get", { name })).body.result?.data;
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

/** Every file under `dir` (following nothing), as bytes. */
async function filesUnder(dir: string): Promise<{ path: string; bytes: Buffer }[]> {
  const out: { path: string; bytes: Buffer }[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) out.push({ path: p, bytes: await readFile(p) });
    }
  };
  await walk(dir);
  return out;
}

const holding = (files: { path: string; bytes: Buffer }[], needle: string) => files.filter((f) => f.bytes.includes(needle)).map((f) => f.path);

beforeAll(async () => {
  expect(await dockerAvailable(), "a Docker engine (scripts/test-deps.sh)").toBe(true);
  git = await startGitServer({ basicAuth: { username: GIT_USER, password: GIT_TOKEN } });
  c = await startConsole({ env: { DCC_ALLOW_INSECURE_GIT: "1", DCC_BASE_IMAGE: "dcc-test/busybox:1" } });
  const e = (await c.mutate<{ token: string }>("hosts.createEnrollment", {})).body.result!.data;
  agent = await startAgent({ consoleUrl: `ws://127.0.0.1:${c.port}/agent`, token: e.token, args: ["--allow-insecure-git"] });
  hostId = String((await agent.waitForLog("enrolled")).hostId);
  await agent.waitForLog("connected");
  repoUrl = (await git.createRepo("private-app", { "index.html": "private\n" })).url;
  port = await freePort();
  const created = await c.mutate("apps.create", {
    name: "cfg",
    repository: repoUrl,
    hostId,
    port,
    startCommand:
      'printf %s "$A" > /app/a.txt; printf %s "$CANARY_SECRET" | sha256sum > /app/secret.sha; echo "user=$USER logname=$LOGNAME pip=$PIP_CACHE_DIR path=$PATH"; ' +
      '(while true; do echo "secret=$CANARY_SECRET"; sleep 0.5; done) & httpd -f -p $PORT -h /app',
    env: { A: "$HOME x", GREETING: "hello $(id) `id` ${PORT}" },
    secrets: { CANARY_SECRET: CANARY },
    gitCredential: { username: GIT_USER, token: GIT_TOKEN },
    resources: { memoryMiB: 256, cpus: 0.5 },
    healthPath: "/index.html",
  });
  expect(created.status, JSON.stringify(created.body)).toBe(200);
  await waitFor(
    "cfg RUNNING and reachable",
    async () => {
      const a = await getApp("cfg");
      if (a?.lastError) throw new Error(a.lastError);
      return a?.status === "RUNNING" && a.health === "reachable";
    },
    60_000,
    200,
  );
}, 120_000);

const STUBBORN_IMAGE = "dcc-test/ignores-args:1";

afterAll(async () => {
  await agent?.stop(true);
  if (hostId) await removeByLabel(`dcc.host=${hostId}`).catch(() => {});
  await run("docker", ["rmi", "-f", STUBBORN_IMAGE]).catch(() => {});
  await c?.dispose();
  await git?.close();
});

describe("environment and secrets in the container", () => {
  it("env values arrive literally, and the container has USER, LOGNAME, ~/.local/bin on PATH, pip's cache in the home", async () => {
    expect(await (await fetch(`http://127.0.0.1:${port}/a.txt`)).text()).toBe("$HOME x");
    const a = (await getApp("cfg"))!;
    expect(a.env).toEqual({ A: "$HOME x", GREETING: "hello $(id) `id` ${PORT}" });
    expect(a.secretNames).toEqual(["CANARY_SECRET"]);
    expect(a.hasGitCredential).toBe(true);
    expect(a.resources).toEqual({ memoryMiB: 256, cpus: 0.5 });
    expect(a.healthPath).toBe("/index.html");
    const lines = (await c.query<{ items: { line: string }[] }>("apps.logs", { name: "cfg", tail: 200 })).body.result!.data.items.map((l) => l.line);
    const shell = lines.find((l) => l.startsWith("user="))!;
    expect(shell).toMatch(/^user=app logname=app pip=\/app\/\.cache\/pip path=\/app\/\.local\/bin:/);
  });

  it("the secret reaches the container (its hash is what the app computed), and the container's config does not hold it", async () => {
    expect(await (await fetch(`http://127.0.0.1:${port}/secret.sha`)).text()).toContain(sha256(CANARY));
    const id = (await run("docker", ["ps", "-q", "--filter", "label=dcc.app=cfg", "--filter", `label=dcc.host=${hostId}`])).stdout.trim().split("\n")[0]!;
    const { stdout } = await run("docker", ["inspect", id]);
    expect(stdout).not.toContain(CANARY);
    expect(stdout).toContain('"Memory": 268435456');
  });

  it("apps.logs and the live log view show *** where the app printed the secret", async () => {
    const lines = (await c.query<{ items: { line: string }[] }>("apps.logs", { name: "cfg", tail: 50 })).body.result!.data.items.map((l) => l.line);
    expect(lines).toContain("secret=***");
    expect(lines.join("\n")).not.toContain(CANARY);
    const sse = await openSse(`${c.url}/api/trpc/apps.logFollow?input=${encodeURIComponent(JSON.stringify({ name: "cfg", tail: 0 }))}`, c.authHeaders);
    try {
      const batch = JSON.parse((await sse.next((e) => e.event === "message", 15_000)).data) as { lines: { line: string }[] };
      expect(batch.lines.map((l) => l.line)).toContain("secret=***");
      expect(JSON.stringify(batch)).not.toContain(CANARY);
    } finally {
      sse.close();
    }
  });

  it("replacing the secret recreates the container with the new value; the audit names it, never the value", async () => {
    const r = await c.mutate("apps.update", { name: "cfg", secrets: { CANARY_SECRET: CANARY2 } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    await waitFor("new secret in the container", async () => (await fetch(`http://127.0.0.1:${port}/secret.sha`).then((x) => x.text()).catch(() => "")).includes(sha256(CANARY2)), 60_000, 250);
    const audit = JSON.stringify((await c.query("audit.list", {})).body);
    expect(audit).toContain("CANARY_SECRET");
    expect(audit).not.toContain(CANARY2);
    expect(audit).not.toContain(CANARY);
  });

  it("the canary is in none of: API answers, console and agent logs, database bytes, outbox rows, compose file, backup", async () => {
    await waitFor("cfg RUNNING again", async () => (await getApp("cfg"))?.status === "RUNNING", 60_000, 250);
    const answers = [
      await c.query("apps.get", { name: "cfg" }),
      await c.query("apps.list", {}),
      await c.query("apps.timeline", { name: "cfg" }),
      await c.query("audit.list", {}),
    ].map((r) => JSON.stringify(r.body));
    const outbox = await c.db().execute("SELECT params FROM commands");
    const dbFiles = (await filesUnder(c.dataDir)).filter((f) => /dcc\.db/.test(f.path));
    expect(dbFiles.length).toBeGreaterThan(0);
    const compose = await readFile(join(agent.stateDir, "ops", "compose", "cfg", "docker-compose.yml"));
    // The one place the value lives on the host: the agent's 0400 secret file for the container.
    const secretFile = join(agent.stateDir, "ops", "compose", "cfg", "secrets", "CANARY_SECRET");
    expect(await readFile(secretFile, "utf8")).toBe(CANARY2);
    expect((await stat(secretFile)).mode & 0o777).toBe(0o400);

    const out = await mkdtemp(join(tmpdir(), "dcc-cfg-backup-"));
    try {
      await run(process.execPath, [
        join(ROOT, "scripts/backup.mjs"),
        "--out", out,
        "--data-dir", c.dataDir,
        "--database-url", c.databaseUrl,
        "--agent-state-dir", agent.stateDir,
        "--workspace-root", join(agent.stateDir, "..", "workspaces"),
        "--quiet",
      ]);
      const backup = await filesUnder(out);
      expect(backup.length).toBeGreaterThan(2);
      for (const v of [CANARY, CANARY2, GIT_TOKEN]) {
        for (const a of answers) expect(a).not.toContain(v);
        expect(JSON.stringify(outbox.rows)).not.toContain(v);
        expect(holding(dbFiles, v)).toEqual([]);
        expect(compose.includes(v)).toBe(false);
        expect(c.output()).not.toContain(v);
        expect(agent.output()).not.toContain(v);
        expect(holding(backup, v), `backup files holding ${v}`).toEqual([]);
      }
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  }, 60_000);
});

describe("apply and promote", () => {
  it("apps.apply with the same env and secrets again changes nothing and queues nothing", async () => {
    const a = (await getApp("cfg"))!;
    const r = await c.mutate<{ changed: string[]; commandId: string | null }>("apps.applySpec", {
      name: "cfg",
      env: a.env,
      secrets: { CANARY_SECRET: CANARY2 },
      gitCredential: { username: GIT_USER, token: GIT_TOKEN },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.result!.data).toMatchObject({ changed: [], commandId: null });
  });

  it("promote carries env defaults and secret names, never a value", async () => {
    const r = await c.mutate("templates.promote", { name: "cfg", slug: "cfg-template" });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const t = await c.query<{ env: Record<string, string>; secrets: { name: string; required: boolean }[] }>("templates.get", { slug: "cfg-template" });
    expect(t.body.result!.data.env).toEqual({ A: "$HOME x", GREETING: "hello $(id) `id` ${PORT}" });
    expect(t.body.result!.data.secrets).toEqual([expect.objectContaining({ name: "CANARY_SECRET", required: false })]);
    const row = JSON.stringify((await c.db().execute("SELECT * FROM marketplace_templates WHERE slug = 'cfg-template'")).rows);
    for (const v of [CANARY, CANARY2, GIT_TOKEN]) expect(row).not.toContain(v);
  });
});

describe("install output and deploy errors", () => {
  it("a failing install command that prints a secret shows *** in the app's error and its timeline", async () => {
    const LEAK = "canary-install-leak-90ab";
    const r = await c.mutate("apps.create", {
      name: "leaky",
      repository: repoUrl,
      hostId,
      port: await freePort(),
      gitCredential: { username: GIT_USER, token: GIT_TOKEN },
      secrets: { LEAK },
      installCommand: 'echo "install sees $LEAK"; exit 3',
      startCommand: "httpd -f -p $PORT -h /app",
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const a = await waitFor("leaky fails", async () => {
      const x = await getApp("leaky");
      return x?.lastError ? x : null;
    }, 60_000, 200);
    expect(a.lastError).toContain("install sees ***");
    expect(a.lastError).not.toContain(LEAK);
    const timeline = JSON.stringify((await c.query("apps.timeline", { name: "leaky" })).body);
    expect(timeline).toContain("install sees ***");
    expect(timeline).not.toContain(LEAK);
    expect(agent.output()).not.toContain(LEAK);
    expect(c.output()).not.toContain(LEAK);
  }, 90_000);
});

describe("an image whose ENTRYPOINT ignores its arguments", () => {
  it("still runs the start command, with the image's environment (PATH included) kept", async () => {
    const dir = await mkdtemp(join(tmpdir(), "dcc-stubborn-"));
    try {
      await writeFile(
        join(dir, "Dockerfile"),
        [
          "FROM dcc-test/busybox:1",
          "ENV IMAGE_VAR=from-the-image PATH=/opt/tool/bin:/bin",
          'ENTRYPOINT ["/bin/sh", "-c", "echo this entrypoint ignores its arguments; sleep 3600"]',
          "",
        ].join("\n"),
      );
      await run("docker", ["build", "-q", "-t", STUBBORN_IMAGE, dir]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const appPort = await freePort();
    const r = await c.mutate("apps.create", {
      name: "stubborn",
      repository: repoUrl,
      hostId,
      port: appPort,
      image: STUBBORN_IMAGE,
      gitCredential: { username: GIT_USER, token: GIT_TOKEN },
      startCommand: 'printf "%s|%s" "$IMAGE_VAR" "$PATH" > /app/env.txt; httpd -f -p $PORT -h /app',
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    await waitFor("stubborn RUNNING", async () => {
      const a = await getApp("stubborn");
      if (a?.lastError) throw new Error(a.lastError);
      return a?.status === "RUNNING" && a.health === "reachable";
    }, 60_000, 200);
    expect(await (await fetch(`http://127.0.0.1:${appPort}/env.txt`)).text()).toBe("from-the-image|/app/.local/bin:/opt/tool/bin:/bin");
  }, 90_000);
});

describe("private repositories", () => {
  it("the token is not in any git config, the workspace, or the agent's state outside its secret files", async () => {
    const state = (await filesUnder(agent.stateDir)).filter((f) => !f.path.includes(`${join("compose", "cfg", "secrets")}`));
    const workspace = await filesUnder(join(agent.stateDir, "..", "workspaces"));
    expect(holding(state, GIT_TOKEN)).toEqual([]);
    expect(holding(workspace, GIT_TOKEN)).toEqual([]);
    expect(state.some((f) => f.path.endsWith(join("cfg.git", "config")))).toBe(true);
  });

  it("without a credential: a clear 'needs credentials'; with a wrong one: 'refused'; the token never in the error or logs", async () => {
    for (const [name, extra, expected] of [
      ["nocred", {}, /needs credentials/],
      ["badcred", { gitCredential: { username: GIT_USER, token: "wrong-token-5d2f" } }, /refused the app's git credentials/],
    ] as const) {
      const r = await c.mutate("apps.create", { name, repository: repoUrl, hostId, port: await freePort(), startCommand: "httpd -f -p $PORT -h /app", ...extra });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      const failed = await waitFor(`${name} fails`, async () => {
        const a = await getApp(name);
        return a?.lastError ? a : null;
      }, 60_000, 200);
      expect(failed.lastError).toMatch(expected);
      expect(failed.lastError).not.toContain("wrong-token-5d2f");
      expect(failed.lastError).not.toContain(GIT_TOKEN);
    }
    expect(agent.output()).not.toContain("wrong-token-5d2f");
    expect(c.output()).not.toContain("wrong-token-5d2f");
  });

  it("setting the right credential on the failed app deploys it", async () => {
    const r = await c.mutate("apps.update", { name: "badcred", gitCredential: { username: GIT_USER, token: GIT_TOKEN } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    await waitFor("badcred RUNNING", async () => (await getApp("badcred"))?.status === "RUNNING", 60_000, 200);
  });
});
