// The whole chain with real processes: apps.create on the console → signed provision command over
// the websocket → the built agent clones from a smart-HTTP git server and runs compose on the real
// Docker engine → status reports make the app RUNNING and reachable; stop and deinstall travel the
// same way, and the record goes only when the agent reports the deinstall done.
import type { AppDto as AppItem } from "../../app/services/apps.server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dockerAvailable, listByLabel, removeByLabel } from "../support/docker";
import { startConsole, type RunningConsole } from "../support/console";
import { startGitServer, type GitServer } from "../support/git-server";
import { freePort } from "../support/net";
import { startAgent, waitFor, type RunningAgent } from "./agents";

let c: RunningConsole;
let git: GitServer;
let agent: RunningAgent;
let hostId: string;

const app = async (name: string) => (await c.query<AppItem>("apps.get", { name })).body.result?.data;

beforeAll(async () => {
  expect(await dockerAvailable(), "a Docker engine (scripts/test-deps.sh)").toBe(true);
  git = await startGitServer();
  c = await startConsole({ env: { DCC_ALLOW_INSECURE_GIT: "1", DCC_BASE_IMAGE: "dcc-test/busybox:1" } });
  const e = (await c.mutate<{ token: string; consoleUrl: string }>("hosts.createEnrollment", {})).body.result!.data;
  agent = await startAgent({ consoleUrl: e.consoleUrl, token: e.token, args: ["--allow-insecure-git"] });
  hostId = String((await agent.waitForLog("enrolled")).hostId);
  await agent.waitForLog("connected");
});
afterAll(async () => {
  await agent?.stop(true);
  if (hostId) await removeByLabel(`dcc.host=${hostId}`).catch(() => {});
  await c?.dispose();
  await git?.close();
});

describe("deploy through the channel", () => {
  it("provisions, reports RUNNING, stops and deinstalls an app on the real engine", async () => {
    const repo = await git.createRepo("site", { "index.html": "hello from the agent\n" });
    const port = await freePort();
    const created = await c.mutate<AppItem>("apps.create", { name: "site", repository: repo.url, startCommand: "httpd -f -p $PORT -h /app", port, hostId });
    expect(created.status).toBe(200);
    expect(created.body.result!.data.status).toBe("STARTING");

    const running = await waitFor("RUNNING and reachable", async () => {
      const a = await app("site");
      if (a?.lastError) throw new Error(a.lastError);
      return a?.status === "RUNNING" && a.health === "reachable" && a;
    }, 60_000, 200);
    expect(running.commitSha).toBe(repo.sha);
    expect(await (await fetch(`http://127.0.0.1:${port}/index.html`)).text()).toBe("hello from the agent\n");
    const events = await c.db().execute("SELECT type FROM app_events WHERE app_name = 'site' ORDER BY id");
    expect(events.rows.map((r) => r.type)).toEqual(expect.arrayContaining(["created", "progress", "result", "status"]));
    const provision = await c.db().execute("SELECT state, attempts FROM commands WHERE app_name = 'site' AND action = 'provision'");
    expect(provision.rows[0]).toMatchObject({ state: "done", attempts: 1 });

    expect((await c.mutate("apps.stop", { name: "site" })).status).toBe(200);
    await waitFor("STOPPED", async () => (await app("site"))?.status === "STOPPED", 30_000, 200);

    expect((await c.mutate("apps.deinstall", { name: "site" })).status).toBe(200);
    await waitFor("record removed", async () => (await c.query("apps.get", { name: "site" })).status === 404, 60_000, 200);
    expect(await listByLabel(`dcc.host=${hostId}`)).toEqual([]);
  });
});
