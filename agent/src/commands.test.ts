import { createHash, createPrivateKey } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CommandProcessor } from "./commands";
import { signCommandSecrets } from "./contract/command-secrets";
import { generateSigningKeyPair, publicKeyFromBase64, signCommand, type AgentMessage, type CommandPayload } from "./contract/protocol";
import type { StatusReport } from "./contract/reports";
import { runPing, type CommandRunner, type ValidCommand } from "./dispatch";
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
let runner: CommandRunner;
const observation = (app: string): StatusReport => ({ app, status: "RUNNING", health: "reachable", phase: null, lastError: null, at: new Date().toISOString() });
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
    runner,
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
  runner = {
    async run(c: ValidCommand) {
      runs.push({ action: c.action, app: c.app });
      if (c.action === "ping") return { ok: true, result: await runPing(c.params) };
      return { ok: true, result: { done: c.action }, ...(c.app ? { observed: observation(c.app) } : {}) };
    },
    observe: async (app) => observation(app),
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

  it("hands the dispatcher typed parameters validated once (defaults applied, the spec's name checked)", async () => {
    const seen: ValidCommand[] = [];
    runner.run = async (c) => (seen.push(c), { ok: true, result: {} });
    const c = cmd({ action: "reinstall", app: "webui", params: { spec }, deadlineAt: new Date(Date.now() + 5000).toISOString() });
    await processor().handle(signCommand(c, consolePriv));
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ id: c.id, action: "reinstall", app: "webui", params: { spec, clean: false }, deadlineAt: c.deadlineAt });
  });

  it.each([
    ["a cancel without a command id", { action: "cancel" as const, app: "webui", params: {} }],
    ["a cancel that names no app", { action: "cancel" as const, app: null, params: { commandId: "00000000-0000-4000-8000-000000000001" } }],
    ["a start with a spec of another app", { action: "start" as const, app: "webui", params: { spec: { ...spec, name: "other" } } }],
    ["a ping that names an app", { action: "ping" as const, app: "webui", params: {} }],
    ["a cleanup with an unknown item kind", { action: "cleanup" as const, app: null, params: { dryRun: true, items: [{ kind: "volume", id: "x" }] } }],
    ["a cleanup with an empty item list", { action: "cleanup" as const, app: null, params: { dryRun: true, items: [] } }],
  ])("refuses %s as invalid parameters", async (_what, over) => {
    await processor().handle(signCommand(cmd(over), consolePriv));
    expect(runs).toEqual([]);
    expect(refusal()).toMatchObject({ code: "invalid-params" });
  });

  it("a command's result carries the observation, and a replay answered from the journal carries the current one", async () => {
    const env = signCommand(cmd({ action: "start", app: "webui" }), consolePriv);
    await processor().handle(env);
    expect(sent.at(-1)).toMatchObject({ type: "result", ok: true, observed: { app: "webui", status: "RUNNING" } });
    runner.observe = async (app) => ({ ...observation(app), status: "STOPPED", health: "unknown", lastError: "killed by SIGKILL" });
    sent = [];
    await processor().handle(env);
    expect(runs).toHaveLength(1);
    expect(sent.map((m) => m.type)).toEqual(["ack", "result"]);
    expect(sent[1]).toMatchObject({ ok: true, observed: { status: "STOPPED", lastError: "killed by SIGKILL" } });
    // the journal keeps the outcome, not an observation that would be stale on replay
    expect(journal.get((sent[1] as { id: string }).id)).not.toHaveProperty("observed");
  });

  it("a journal that cannot be written (ENOSPC) answers an error result with the observation and runs nothing", async () => {
    const full = Object.assign(Object.create(Journal.prototype) as Journal, {
      get: () => undefined,
      begin: () => {
        throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
      },
    });
    const c = cmd({ action: "start", app: "webui" });
    await processor(full).handle(signCommand(c, consolePriv));
    expect(runs).toEqual([]);
    expect(sent).toEqual([
      expect.objectContaining({ type: "result", id: c.id, ok: false, error: expect.stringMatching(/could not record the command in its journal: ENOSPC/), observed: expect.objectContaining({ app: "webui" }) }),
    ]);
  });

  it("a journal that fails when the result is written (EIO) still answers the result", async () => {
    mkdirSync(join(dir, "j2"));
    const failing = Journal.open(join(dir, "j2"));
    failing.finish = () => {
      throw new Error("EIO: i/o error, write");
    };
    const c = cmd({ action: "stop", app: "webui" });
    await processor(failing).handle(signCommand(c, consolePriv));
    expect(sent.map((m) => m.type)).toEqual(["ack", "result"]);
    expect(sent[1]).toMatchObject({ ok: true, result: { done: "stop" }, observed: { app: "webui" } });
    expect(logs.some((l) => l.msg.startsWith("could not journal"))).toBe(true);
    failing.close();
  });

  it("a runner that throws is answered as a failed result, never with silence", async () => {
    runner.run = async () => {
      throw new TypeError("boom inside the dispatcher");
    };
    const c = cmd({ action: "restart", app: "webui" });
    await processor().handle(signCommand(c, consolePriv));
    expect(sent.at(-1)).toMatchObject({ type: "result", id: c.id, ok: false, error: "boom inside the dispatcher" });
    expect(journal.get(c.id)).toMatchObject({ state: "done", ok: false });
  });
});

describe("CommandProcessor: secrets beside a command", () => {
  const provision = () => cmd({ app: "webui", action: "provision", params: { spec: { ...spec, secretNames: ["HF_TOKEN"] } } });
  const bundle = (c: CommandPayload, over: Record<string, unknown> = {}) => ({ commandId: c.id, hostId: "host-a", values: { HF_TOKEN: "hf_value_1234" }, ...over });

  it("hands verified values to the runner, journals only the payload's hash, and runs a re-delivery once", async () => {
    const seen: (ValidCommand["secrets"] | undefined)[] = [];
    const inner = runner;
    runner = { ...inner, run: (c, p) => (seen.push(c.secrets), inner.run(c, p)) };
    const c = provision();
    const env = { ...signCommand(c, consolePriv), secrets: signCommandSecrets(bundle(c), consolePriv) };
    await processor().handle(env);
    expect(seen).toEqual([bundle(c)]);
    expect(JSON.stringify(journal.get(c.id))).not.toContain("hf_value_1234");
    // Re-delivered with freshly resolved values: answered from the journal, not run again.
    await processor().handle({ ...signCommand(c, consolePriv), secrets: signCommandSecrets(bundle(c), consolePriv) });
    expect(runs).toHaveLength(1);
  });

  it.each([
    ["signed with another key", (c: CommandPayload) => signCommandSecrets(bundle(c), otherPriv)],
    ["bound to another command", (c: CommandPayload) => signCommandSecrets(bundle(c, { commandId: "other" }), consolePriv)],
    ["bound to another host", (c: CommandPayload) => signCommandSecrets(bundle(c, { hostId: "host-b" }), consolePriv)],
  ])("refuses secrets %s, runs nothing and echoes no value", async (_label, make) => {
    const c = provision();
    await processor().handle({ ...signCommand(c, consolePriv), secrets: make(c) });
    expect(runs).toEqual([]);
    expect(refusal()).toMatchObject({ code: "invalid-params", id: c.id });
    expect(refusal()!.reason).toContain("secrets");
    expect(JSON.stringify(sent) + JSON.stringify(logs)).not.toContain("hf_value_1234");
  });
});
