// The built agent over the real wire (a scripted console), the real engine and a real smart-HTTP
// git server: every answer about an app carries the agent's observation of it — a deploy, a
// no-op start, a replay answered from the journal, a cancel, a deadline — except after a
// deinstall; the hello after a reconnect lists each app with its observation.
import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signCommand, type AgentMessage, type CommandPayload } from "../../agent/src/contract/protocol";
import { dockerAvailable, removeByLabel } from "../support/docker";
import { startGitServer, type GitServer } from "../support/git-server";
import { freePort } from "../support/net";
import { FakeConsole, startAgent, waitFor, type RunningAgent } from "./agents";
import { testSpec } from "./ops-fixture";

type Result = Extract<AgentMessage, { type: "result" }>;

let fc: FakeConsole;
let agent: RunningAgent;
let git: GitServer;
let hole: Server;
let holePort: number;
const held = new Set<Socket>();

beforeAll(async () => {
  expect(await dockerAvailable(), "a Docker engine (scripts/test-deps.sh)").toBe(true);
  git = await startGitServer();
  holePort = await freePort();
  hole = createServer((s) => {
    held.add(s);
    s.resume();
    s.on("error", () => {}).on("close", () => held.delete(s));
  });
  await new Promise<void>((r) => hole.listen(holePort, "127.0.0.1", () => r()));
  fc = new FakeConsole();
  fc.hostId = `obs-${randomBytes(4).toString("hex")}`;
  await fc.start();
  agent = await startAgent({ consoleUrl: fc.url, token: "dcce_any-token-the-fake-accepts", args: ["--allow-insecure-git"] });
  await agent.waitForLog("connected");
});
afterAll(async () => {
  await agent?.stop(true);
  await fc?.close();
  for (const s of held) s.destroy();
  await new Promise((r) => hole?.close(r));
  if (fc) await removeByLabel(`dcc.host=${fc.hostId}`).catch(() => {});
  await git?.close();
});

function command(app: string | null, action: CommandPayload["action"], params: Record<string, unknown>, over: Partial<CommandPayload> = {}) {
  const p: CommandPayload = {
    v: 1,
    id: randomUUID(),
    hostId: fc.hostId,
    app,
    action,
    params,
    issuedAt: new Date().toISOString(),
    expiresAt: new Date(Date.now() + 120_000).toISOString(),
    ...over,
  };
  return { payload: p, env: signCommand(p, fc.privateKey) };
}

async function send(cmd: ReturnType<typeof command>, nth = 0, timeoutMs = 60_000): Promise<Result> {
  fc.send(cmd.env);
  return waitFor(`result of ${cmd.payload.action}`, () => fc.of("result").filter((r) => r.id === cmd.payload.id)[nth], timeoutMs);
}

const spec = testSpec;

describe("results carry the agent's observation", () => {
  it("deploy, no-op start, replay from the journal, reconnect inventory, deinstall", async () => {
    const name = `obs-${randomBytes(3).toString("hex")}`;
    const repo = await git.createRepo(name, { "index.html": "observed\n" });
    const s = spec(name, repo.url, await freePort());

    const provisioned = await send(command(name, "provision", { spec: s }));
    expect(provisioned).toMatchObject({ ok: true, observed: { app: name, commitSha: repo.sha, containerState: "running" } });
    await waitFor("reachable", () => fc.of("status").some((m) => m.reports.some((r) => r.app === name && r.status === "RUNNING" && r.health === "reachable")));

    const start = command(name, "start", { spec: s });
    const first = await send(start);
    expect(first).toMatchObject({ ok: true, result: { message: "already running" }, observed: { status: "RUNNING", health: "reachable", lastError: null } });
    const replay = await send(start, 1);
    expect(replay).toMatchObject({ ok: true, result: { message: "already running" }, observed: { status: "RUNNING", health: "reachable" } });
    expect(agent.find("command executed").filter((e) => e.id === start.payload.id)).toHaveLength(1);

    // the link drops: the next hello lists the app with its observation
    const hellos = fc.of("hello").length;
    fc.socket?.terminate();
    const hello = await waitFor("hello after reconnect", () => fc.of("hello")[hellos], 30_000);
    expect(hello.inventory.find((i) => i.app === name)).toMatchObject({ status: "RUNNING", observed: { app: name, status: "RUNNING", health: "reachable" } });
    await agent.waitForLog("connected", (e) => e !== agent.find("connected")[0]);

    const gone = await send(command(name, "deinstall", {}));
    expect(gone.ok).toBe(true);
    expect(gone).not.toHaveProperty("observed");
  });

  it("cancel and deadline answer with a reason and the observation", async () => {
    const name = `slow-${randomBytes(3).toString("hex")}`;
    const s = spec(name, `http://127.0.0.1:${holePort}/slow.git`, await freePort());
    const deploy = command(name, "provision", { spec: s });
    fc.send(deploy.env);
    await waitFor("clone running", () => held.size > 0, 20_000);
    const cancel = await send(command(name, "cancel", { commandId: deploy.payload.id }));
    expect(cancel).toMatchObject({ ok: true, result: { cancelled: true, target: "running" }, observed: { app: name, status: "STOPPED", lastError: "cancelled" } });
    const cancelled = await waitFor("cancelled deploy", () => fc.of("result").find((r) => r.id === deploy.payload.id));
    expect(cancelled).toMatchObject({ ok: false, error: "cancelled", observed: { status: "STOPPED" } });

    const now = Date.now();
    const late = await send(command(name, "start", { spec: s }, { issuedAt: new Date(now).toISOString(), deadlineAt: new Date(now + 2000).toISOString() }));
    expect(late).toMatchObject({ ok: false, error: `deadline passed: start ran longer than 2 s on host ${fc.hostId}`, observed: { status: "STOPPED" } });
    expect((await send(command(name, "deinstall", {}))).ok).toBe(true);
  });
});
