// The built agent against a scripted console that sends what no real console would: each bad
// command is refused with a logged reason and nothing runs; a replay is answered from the
// persisted journal (also after an agent restart) and never runs twice; a console that cannot
// prove it holds the pinned key gets no authentication at all.
import { createPrivateKey } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateSigningKeyPair, signCommand, type CommandEnvelope, type CommandPayload } from "../../agent/src/contract/protocol";
import { FakeConsole, executions, startAgent, waitFor, type RunningAgent } from "./agents";

let fc: FakeConsole;
let agent: RunningAgent;
let n = 0;

function payload(over: Partial<CommandPayload> = {}): CommandPayload {
  n++;
  return {
    v: 1,
    id: `10000000-0000-4000-8000-${String(n).padStart(12, "0")}`,
    hostId: fc.hostId,
    app: null,
    action: "ping",
    params: {},
    issuedAt: new Date().toISOString(),
    expiresAt: new Date(Date.now() + 60_000).toISOString(),
    ...over,
  };
}

async function refusedWith(env: CommandEnvelope, code: string) {
  const before = fc.of("refused").length;
  fc.send(env);
  const r = await waitFor(`refusal ${code}`, () => fc.of("refused")[before]);
  expect(r.code).toBe(code);
  const logged = await agent.waitForLog("command refused", (e) => e.code === code);
  expect(String(logged.reason).length).toBeGreaterThan(5);
  return r;
}

beforeAll(async () => {
  fc = new FakeConsole();
  await fc.start();
  agent = await startAgent({ consoleUrl: fc.url, token: "dcce_any-token-the-fake-accepts" });
  await agent.waitForLog("connected");
});
afterAll(async () => {
  await agent?.stop(true);
  await fc?.close();
});

describe("agent refusals", () => {
  it("refuses a command signed with another key", async () => {
    const other = createPrivateKey(generateSigningKeyPair().privateKeyPem);
    const r = await refusedWith(signCommand(payload(), other), "bad-signature");
    expect(r.id).toBeUndefined();
  });

  it("refuses a command for another host", async () => {
    const p = payload({ hostId: "someone-else" });
    const r = await refusedWith(signCommand(p, fc.privateKey), "wrong-host");
    expect(r.id).toBe(p.id);
  });

  it("refuses an expired command", async () => {
    await refusedWith(signCommand(payload({ expiresAt: new Date(Date.now() - 1000).toISOString() }), fc.privateKey), "expired");
  });

  it("re-validates parameters with the contract's schemas", async () => {
    const spec = {
      appId: "a1",
      name: "webui",
      repository: "https://example.com/x/webui.git",
      startCommand: "python app.py\nrm -rf /",
      installCommand: null,
      port: 7860,
      image: "busybox",
      gpuDevices: [],
      capAdd: [],
      keepPaths: [],
    };
    const r = await refusedWith(signCommand(payload({ action: "provision", app: "webui", params: { spec } }), fc.privateKey), "invalid-params");
    expect(r.reason).toContain("spec.startCommand");
    await refusedWith(signCommand(payload({ params: { delayMs: -5 } }), fc.privateKey), "invalid-params");
  });

  it("refuses a tampered payload (bytes changed after signing)", async () => {
    const env = signCommand(payload({ params: { echo: "a" } }), fc.privateKey);
    await refusedWith({ ...env, payload: env.payload.replace('"echo":"a"', '"echo":"b"') }, "bad-signature");
  });

  it("has run nothing so far", () => {
    expect(executions(agent)).toHaveLength(0);
    expect(fc.of("ack")).toHaveLength(0);
  });

  it("runs a valid command once and answers its replay from the journal, also after a restart", async () => {
    const p = payload({ params: { echo: "once" } });
    const env = signCommand(p, fc.privateKey);
    fc.send(env);
    await waitFor("result", () => fc.of("result").find((m) => m.id === p.id));
    expect(executions(agent, p.id)).toHaveLength(1);

    fc.send(env);
    await waitFor("second result", () => fc.of("result").filter((m) => m.id === p.id).length === 2);
    expect(fc.of("ack").filter((m) => m.id === p.id).map((m) => m.duplicate ?? false)).toEqual([false, true]);
    await agent.waitForLog("command replayed: already applied, answered from the journal, not run again", (e) => e.id === p.id);
    expect(executions(agent, p.id)).toHaveLength(1);

    // The seen-set is on disk: a new agent process on the same state dir still refuses to re-run it.
    await agent.stop();
    agent = await startAgent({ consoleUrl: fc.url, stateDir: agent.stateDir });
    await agent.waitForLog("connected");
    fc.send(env);
    await agent.waitForLog("command replayed: already applied, answered from the journal, not run again", (e) => e.id === p.id);
    expect(executions(agent)).toHaveLength(0);
    const results = fc.of("result").filter((m) => m.id === p.id);
    expect(results.at(-1)).toMatchObject({ ok: true, result: { pong: true, echo: "once" } });

    // The same id with other (validly signed) bytes is not a replay but an attack.
    await refusedWith(signCommand({ ...p, params: { echo: "twice" } }, fc.privateKey), "replay-mismatch");
    expect(executions(agent)).toHaveLength(0);
  });

  it("closes on a malformed console message and reconnects", async () => {
    const connects = agent.find("connected").length;
    fc.send({ type: "command", payload: 42 });
    await agent.waitForLog("disconnected", (e) => e.code === 4000);
    await waitFor("reconnected", () => agent.find("connected").length > connects);
  });

  it("does not authenticate to a console that cannot prove it holds the pinned key", async () => {
    const port = fc.port;
    await fc.close();
    const impostor = new FakeConsole();
    impostor.port = port;
    // Same address, another key: a man in the middle, or a console that lost its key.
    await (async () => {
      const { WebSocketServer } = await import("ws");
      const { newNonce, signChallenge, PROTOCOL_VERSION } = await import("../../agent/src/contract/protocol");
      const wss = new WebSocketServer({ port, host: "127.0.0.1", path: "/agent" });
      await new Promise((r) => wss.once("listening", r));
      wss.on("connection", (ws) => {
        ws.on("message", (d) => impostor.received.push(JSON.parse(d.toString())));
        const nonce = newNonce();
        ws.send(JSON.stringify({ type: "challenge", protocol: PROTOCOL_VERSION, nonce, sig: signChallenge(nonce, impostor.privateKey) }));
      });
      try {
        await agent.waitForLog("the console did not prove it holds the pinned console key; not authenticating", undefined, 30_000);
        expect(impostor.received.filter((m) => m.type === "auth" || m.type === "hello")).toHaveLength(0);
      } finally {
        for (const c of wss.clients) c.terminate();
        await new Promise((r) => wss.close(r));
      }
    })();
    expect(agent.proc.exitCode).toBeNull();
  });
});
