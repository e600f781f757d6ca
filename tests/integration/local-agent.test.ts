// The console's own local agent: enrolled automatically, state under DCC_DATA_DIR/agent,
// inheriting the console's settings, restarted when it dies, stopped with the console.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startConsole, type RunningConsole } from "../support/console";
import { waitFor } from "./agents";

let c: RunningConsole;
type HostItem = { id: string; online: boolean; facts: { workspaceRoot?: string } };

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const startedPids = () =>
  c
    .output()
    .split("\n")
    .filter((l) => l.includes('"msg":"local agent started"'))
    .map((l) => Number(JSON.parse(l).pid));
async function onlineHosts() {
  return (await c.query<{ items: HostItem[] }>("hosts.list")).body.result!.data.items.filter((h) => h.online);
}

beforeAll(async () => {
  c = await startConsole({ env: { DCC_LOCAL_AGENT: "1", DCC_ALLOW_INSECURE_GIT: "1" } });
});
afterAll(async () => {
  await c?.dispose();
});

describe("local agent", () => {
  it("enrols itself and comes online with the console's workspace root; its keys live under DCC_DATA_DIR/agent", async () => {
    const [h] = await waitFor("local host online", async () => {
      const hosts = await onlineHosts();
      return hosts.length === 1 && hosts;
    });
    expect(h.facts.workspaceRoot).toBe(join(c.dataDir, "workspaces"));
    expect(existsSync(join(c.dataDir, "agent/agent-key.pem"))).toBe(true);
    expect(JSON.parse(readFileSync(join(c.dataDir, "agent/identity.json"), "utf8")).hostId).toBe(h.id);
    expect(startedPids()).toHaveLength(1);
    // The console's secrets are not handed to the agent.
    const environ = readFileSync(`/proc/${startedPids()[0]}/environ`, "utf8");
    expect(environ).not.toContain("DCC_ADMIN_TOKEN");
    expect(environ).not.toContain("DATABASE_URL");
  });

  it("is restarted when it dies, as the same host", async () => {
    const [first] = startedPids();
    const hostId = (await onlineHosts())[0].id;
    process.kill(first, "SIGKILL");
    await waitFor("a new agent process", () => startedPids().length === 2, 20_000);
    await waitFor("online again", async () => (await onlineHosts()).some((h) => h.id === hostId), 20_000);
    const all = (await c.query<{ items: HostItem[] }>("hosts.list")).body.result!.data.items;
    expect(all).toHaveLength(1);
  });

  it("stops with the console", async () => {
    const pid = startedPids().at(-1)!;
    expect(alive(pid)).toBe(true);
    await c.stop();
    await waitFor("agent gone", () => !alive(pid), 10_000);
  });
});
