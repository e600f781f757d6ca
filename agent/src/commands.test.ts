import { createHash, createPrivateKey } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CommandProcessor } from "./commands";
import { generateSigningKeyPair, publicKeyFromBase64, signCommand, type AgentMessage, type CommandPayload } from "./contract/protocol";
import type { Executor } from "./executor";
import { runPing } from "./executor";
import { Journal } from "./journal";
import type { LogFields } from "./log";

const consoleKeys = generateSigningKeyPair();
const consolePriv = createPrivateKey(consoleKeys.privateKeyPem);
const otherPriv = createPrivateKey(generateSigningKeyPair().privateKeyPem);

const spec = {
  appId: "a1",
  name: "webui",
  repository: "https://example.com/org/webui.git",
  startCommand: "python app.py",
  installCommand: null,
  port: 7860,
  image: "busybox:1",
  gpuDevices: [],
  capAdd: [],
  keepPaths: [],
};

let dir: string;
let journal: Journal;
let sent: AgentMessage[];
let logs: { level: string; msg: string; fields: LogFields }[];
let runs: { action: string; app: string | null }[];
let executor: Executor;
let n = 0;

function cmd(over: Partial<CommandPayload> = {}): CommandPayload {
  n++;
  return {
    v: 1,
    id: `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`,
    hostId: "host-a",
    app: null,
    action: "ping",
    params: {},
    issuedAt: new Date().toISOString(),
    expiresAt: new Date(Date.now() + 60_000).toISOString(),
    ...over,
  };
}

function processor(j = journal) {
  return new CommandProcessor({
    hostId: "host-a",
    consoleKey: publicKeyFromBase64(consoleKeys.publicKey),
    journal: j,
    executor,
    rules: { allowInsecure: false },
    send: (m) => void sent.push(m),
    log: (level, msg, fields = {}) => void logs.push({ level, msg, fields }),
  });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "dcc-cmd-"));
  journal = Journal.open(dir);
  sent = [];
  logs = [];
  runs = [];
  executor = {
    async run(action, app, params) {
      runs.push({ action, app });
      if (action === "ping") return runPing(params);
      return { done: action };
    },
    inventory: async () => [],
  };
});
afterEach(() => {
  journal.close();
  rmSync(dir, { recursive: true, force: true });
});

const refusal = () => sent.find((m) => m.type === "refused") as Extract<AgentMessage, { type: "refused" }> | undefined;

describe("CommandProcessor", () => {
  it("runs a verified command once: ack, then result", async () => {
    const c = cmd({ params: { echo: "hi" } });
    await processor().handle(signCommand(c, consolePriv));
    expect(runs).toEqual([{ action: "ping", app: null }]);
    expect(sent.map((m) => m.type)).toEqual(["ack", "result"]);
    expect(sent[1]).toMatchObject({ type: "result", id: c.id, ok: true, result: { pong: true, echo: "hi" } });
    expect(journal.get(c.id)).toMatchObject({ state: "done", ok: true });
  });

  it.each([
    ["signed with another key", () => signCommand(cmd(), otherPriv), "bad-signature"],
    ["for another host", () => signCommand(cmd({ hostId: "host-b" }), consolePriv), "wrong-host"],
    ["expired", () => signCommand(cmd({ expiresAt: new Date(Date.now() - 1).toISOString() }), consolePriv), "expired"],
    ["with parameters outside the schema", () => signCommand(cmd({ params: { delayMs: "soon" } }), consolePriv), "invalid-params"],
    ["a lifecycle action without an app", () => signCommand(cmd({ action: "start" }), consolePriv), "invalid-params"],
    [
      "a provision whose spec names another app",
      () => signCommand(cmd({ action: "provision", app: "other", params: { spec } }), consolePriv),
      "invalid-params",
    ],
    ["a cleanup that names an app", () => signCommand(cmd({ action: "cleanup", app: "webui", params: { dryRun: true } }), consolePriv), "invalid-params"],
    ["a cleanup without dryRun", () => signCommand(cmd({ action: "cleanup", params: {} }), consolePriv), "invalid-params"],
    [
      "a cleanup naming a path instead of an item",
      () => signCommand(cmd({ action: "cleanup", params: { dryRun: false, items: [{ kind: "workspace", id: "../../etc" }] } }), consolePriv),
      "invalid-params",
    ],
    [
      "a provision with a loopback repository",
      () => signCommand(cmd({ action: "provision", app: "webui", params: { spec: { ...spec, repository: "http://127.0.0.1/x.git" } } }), consolePriv),
      "invalid-params",
    ],
  ])("refuses a command %s: nothing runs, the reason is logged and sent", async (_what, make, code) => {
    await processor().handle(make());
    expect(runs).toEqual([]);
    expect(sent.some((m) => m.type === "ack")).toBe(false);
    expect(refusal()).toMatchObject({ code });
    expect(logs.find((l) => l.msg === "command refused")?.fields).toMatchObject({ code });
  });

  it("runs a host-wide cleanup with its checked parameters and journals its result", async () => {
    const c = cmd({ action: "cleanup", params: { dryRun: true, items: [{ kind: "workspace", id: "old-app" }] } });
    await processor().handle(signCommand(c, consolePriv));
    expect(runs).toEqual([{ action: "cleanup", app: null }]);
    expect(sent.map((m) => m.type)).toEqual(["ack", "result"]);
    expect(journal.get(c.id)).toMatchObject({ state: "done", ok: true, action: "cleanup" });
  });

  it("does not echo the id of a command whose signature fails", async () => {
    await processor().handle(signCommand(cmd(), otherPriv));
    expect(refusal()?.id).toBeUndefined();
  });

  it("answers a replay from the journal without running it again, across restarts", async () => {
    const env = signCommand(cmd({ params: { echo: "once" } }), consolePriv);
    await processor().handle(env);
    journal.close();
    journal = Journal.open(dir);
    sent = [];
    await processor(journal).handle(env);
    expect(runs).toHaveLength(1);
    expect(sent.map((m) => m.type)).toEqual(["ack", "result"]);
    expect(sent[0]).toMatchObject({ duplicate: true });
    expect(sent[1]).toMatchObject({ ok: true, result: { echo: "once" } });
    expect(logs.some((l) => l.msg.startsWith("command replayed"))).toBe(true);
  });

  it("acknowledges a re-delivery while the command still runs, and runs it once", async () => {
    const p = processor();
    const env = signCommand(cmd({ params: { delayMs: 50 } }), consolePriv);
    await Promise.all([p.handle(env), p.handle(env)]);
    expect(runs).toHaveLength(1);
    expect(sent.filter((m) => m.type === "result")).toHaveLength(1);
  });

  it("refuses a known id carrying different bytes", async () => {
    const c = cmd();
    await processor().handle(signCommand(c, consolePriv));
    await processor().handle(signCommand({ ...c, params: { echo: "other" } }, consolePriv));
    expect(runs).toHaveLength(1);
    expect(refusal()).toMatchObject({ code: "replay-mismatch", id: c.id });
  });

  it("runs a command again that an agent restart interrupted", async () => {
    const c = cmd({ action: "start", app: "webui" });
    const env = signCommand(c, consolePriv);
    journal.begin({ id: c.id, hash: createHash("sha256").update(env.payload).digest("hex"), action: "start", app: "webui", expiresAt: c.expiresAt });
    await processor().handle(env);
    expect(runs).toEqual([{ action: "start", app: "webui" }]);
    expect(journal.get(c.id)).toMatchObject({ state: "done", ok: true });
  });

  it("runs one app's commands in order and reports a failure as a result", async () => {
    const order: string[] = [];
    executor.run = async (action, app) => {
      order.push(`${action}:start`);
      await new Promise((r) => setTimeout(r, action === "stop" ? 30 : 1));
      order.push(`${action}:end`);
      if (action === "start") throw new Error("container exited");
      return {};
    };
    const p = processor();
    await Promise.all([
      p.handle(signCommand(cmd({ action: "stop", app: "webui" }), consolePriv)),
      p.handle(signCommand(cmd({ action: "start", app: "webui" }), consolePriv)),
    ]);
    expect(order).toEqual(["stop:start", "stop:end", "start:start", "start:end"]);
    const results = sent.filter((m) => m.type === "result");
    expect(results[1]).toMatchObject({ ok: false, error: "container exited" });
  });
});
