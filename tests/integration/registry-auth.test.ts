// Private images: a real docker-registry that requires a login (htpasswd), the built console and
// agent, the real engine. Without a registry login the pull fails with a clear error; with the
// login set (admin, registries.set) the agent pulls it for the deploy and the app runs. The
// password is in no API answer, log, database byte or outbox row.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AppDto } from "../../app/services/apps.server";
import { docker, dockerAvailable, removeByLabel } from "../support/docker";
import { startConsole, type RunningConsole } from "../support/console";
import { startGitServer, type GitServer } from "../support/git-server";
import { freePort } from "../support/net";
import { startRegistry, type Registry } from "../support/registry";
import { startAgent, waitFor, type RunningAgent } from "./agents";

const USER = "puller";
const PASSWORD = "registry-pw-canary-61c0e2";

let c: RunningConsole;
let git: GitServer;
let agent: RunningAgent;
let registry: Registry;
let hostId: string;
let image: string;
let repoUrl: string;

const getApp = async (name: string) => (await c.query<AppDto>("apps.get", { name })).body.result?.data;

beforeAll(async () => {
  expect(await dockerAvailable(), "a Docker engine (scripts/test-deps.sh)").toBe(true);
  registry = await startRegistry({ auth: { username: USER, password: PASSWORD } });
  image = await registry.pushImage("private-app", { layers: 1, layerBytes: 100_000 });
  git = await startGitServer();
  repoUrl = (await git.createRepo("reg-app", { "index.html": "from a private image\n" })).url;
  c = await startConsole({ env: { DCC_ALLOW_INSECURE_GIT: "1", DCC_BASE_IMAGE: "dcc-test/busybox:1" } });
  const e = (await c.mutate<{ token: string }>("hosts.createEnrollment", {})).body.result!.data;
  agent = await startAgent({ consoleUrl: `ws://127.0.0.1:${c.port}/agent`, token: e.token, args: ["--allow-insecure-git"] });
  hostId = String((await agent.waitForLog("enrolled")).hostId);
  await agent.waitForLog("connected");
}, 240_000);

afterAll(async () => {
  await agent?.stop(true);
  if (hostId) await removeByLabel(`dcc.host=${hostId}`).catch(() => {});
  await docker(["rmi", "-f", image]).catch(() => {});
  await c?.dispose();
  await git?.close();
  await registry?.close();
});

describe("private image registries", () => {
  it("without a login the pull is refused and the deploy fails with a clear error", async () => {
    const r = await c.mutate("apps.create", { name: "reg-nologin", repository: repoUrl, hostId, port: await freePort(), image, startCommand: "httpd -f -p $PORT -h /app" });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const a = await waitFor("reg-nologin fails", async () => ((await getApp("reg-nologin"))?.lastError ? getApp("reg-nologin") : null), 90_000, 250);
    expect(a!.lastError).toMatch(/could not be pulled: the registry 127\.0\.0\.1:\d+ needs a login/);
    await c.mutate("apps.deinstall", { name: "reg-nologin" });
  }, 120_000);

  it("with the registry's login set by an admin, the agent pulls the image and the app runs", async () => {
    const set = await c.mutate("registries.set", { host: registry.host, username: USER, password: PASSWORD });
    expect(set.status, JSON.stringify(set.body)).toBe(200);
    expect(JSON.stringify(set.body)).not.toContain(PASSWORD);
    const list = await c.query<{ items: { host: string; username: string }[] }>("registries.list", {});
    expect(list.body.result!.data.items).toEqual([expect.objectContaining({ host: registry.host, username: USER, hasPassword: true })]);
    expect(JSON.stringify(list.body)).not.toContain(PASSWORD);

    const port = await freePort();
    const r = await c.mutate("apps.create", { name: "reg-login", repository: repoUrl, hostId, port, image, startCommand: "httpd -f -p $PORT -h /app" });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    await waitFor(
      "reg-login RUNNING",
      async () => {
        const a = await getApp("reg-login");
        if (a?.lastError) throw new Error(a.lastError);
        return a?.status === "RUNNING" && a.health === "reachable";
      },
      120_000,
      250,
    );
    expect(await (await fetch(`http://127.0.0.1:${port}/index.html`)).text()).toBe("from a private image\n");
  }, 180_000);

  it("the password is in no log, database byte or outbox row", async () => {
    const outbox = await c.db().execute("SELECT params FROM commands");
    expect(JSON.stringify(outbox.rows)).not.toContain(PASSWORD);
    const db = await readFile(join(c.dataDir, "dcc.db"));
    const wal = await readFile(join(c.dataDir, "dcc.db-wal")).catch(() => Buffer.alloc(0));
    expect(Buffer.concat([db, wal]).includes(PASSWORD)).toBe(false);
    expect(c.output()).not.toContain(PASSWORD);
    expect(agent.output()).not.toContain(PASSWORD);
    expect(JSON.stringify((await c.query("audit.list", {})).body)).not.toContain(PASSWORD);
  });
});
