import { describe, expect, it } from "vitest";
import type { StatusReport } from "./contract/reports";
import { Dispatcher, type Outcome, type ValidCommand } from "./dispatch";
import type { ActionContext } from "./ops/actions";
import type { Ops } from "./ops/ops";
import { AppQueue } from "./queue";

const observation = (app: string, over: Partial<StatusReport> = {}): StatusReport => ({ app, status: "RUNNING", health: "reachable", phase: null, lastError: null, at: "t", ...over });

let n = 0;
const id = () => `00000000-0000-4000-8000-${String(++n).padStart(12, "0")}`;
const start = (app: string, over: Partial<ValidCommand> = {}) => ({ id: id(), action: "start", app, params: {}, ...over }) as ValidCommand;

/** A fake ops layer: actions that wait until the signal aborts or `release` is called, and record what ran. */
function fakeOps() {
  const ran: string[] = [];
  const releases = new Map<string, () => void>();
  const tracked = new Set<string>();
  const action = (name: string) => async (app: string, ...rest: unknown[]) => {
    const ctx = rest.at(-1) as ActionContext;
    ran.push(`${name}:${app}:start`);
    tracked.add(app);
    await new Promise<void>((resolve, reject) => {
      releases.set(app, resolve);
      ctx.signal.addEventListener("abort", () => reject(new Error("git was killed")), { once: true });
    });
    ran.push(`${name}:${app}:end`);
    return { message: name };
  };
  const ops = {
    actions: {
      start: action("start"),
      stop: action("stop"),
      restart: action("restart"),
      deinstall: async (app: string) => (tracked.delete(app), { message: "deinstalled" }),
    },
    observe: async (app: string) => (tracked.has(app) ? observation(app) : undefined),
    observer: { current: (app: string) => observation(app) },
  } as unknown as Ops;
  const release = async (app: string) => {
    for (let i = 0; i < 100 && !releases.has(app); i++) await new Promise((r) => setTimeout(r, 5));
    releases.get(app)!();
    releases.delete(app);
  };
  return { ops, ran, release };
}

function dispatcher(ops: Ops | null) {
  return new Dispatcher({ hostId: "gpu-box-1", ops: async () => ops, unavailable: () => "Docker is not reachable on this host", queue: new AppQueue(200), log: () => {}, cancelWaitMs: 2000 });
}
const noProgress = () => {};

describe("Dispatcher", () => {
  it("runs one app's commands in order, other apps alongside, and every app result carries the observation", async () => {
    const { ops, ran, release } = fakeOps();
    const d = dispatcher(ops);
    const a1 = d.run({ id: id(), action: "stop", app: "a", params: {} } as ValidCommand, noProgress);
    const a2 = d.run(start("a"), noProgress);
    const b1 = d.run(start("b"), noProgress);
    await release("b");
    expect(await b1).toMatchObject({ ok: true, result: { message: "start" }, observed: { app: "b", status: "RUNNING" } });
    expect(ran).toEqual(["stop:a:start", "start:b:start", "start:b:end"]);
    await release("a");
    await release("a");
    await Promise.all([a1, a2]);
    expect(ran.filter((r) => r.includes(":a:"))).toEqual(["stop:a:start", "stop:a:end", "start:a:start", "start:a:end"]);
  });

  it("cancel drops a queued command without running it and aborts a running one; neither waits in the queue", async () => {
    const { ops, ran } = fakeOps();
    const d = dispatcher(ops);
    const running = start("a");
    const queued = { id: id(), action: "restart", app: "a", params: {} } as ValidCommand;
    const pRunning = d.run(running, noProgress);
    const pQueued = d.run(queued, noProgress);
    await new Promise((r) => setTimeout(r, 20));

    const c1 = await d.run({ id: id(), action: "cancel", app: "a", params: { commandId: queued.id } }, noProgress);
    expect(c1).toMatchObject({ ok: true, result: { cancelled: true, target: "queued" }, observed: { app: "a" } });
    expect(await pQueued).toMatchObject({ ok: false, error: "cancelled before it ran", observed: { app: "a" } });

    const c2 = await d.run({ id: id(), action: "cancel", app: "a", params: { commandId: running.id } }, noProgress);
    expect(c2).toMatchObject({ ok: true, result: { cancelled: true, target: "running" } });
    // the action's own error (git killed) is reported as the reason it was stopped
    expect(await pRunning).toMatchObject({ ok: false, error: "cancelled" });
    expect(ran).toEqual(["start:a:start"]);

    const c3 = await d.run({ id: id(), action: "cancel", app: "a", params: { commandId: running.id } }, noProgress);
    expect(c3).toMatchObject({ ok: true, result: { cancelled: false, target: "unknown" } });
  });

  it("a command of another app cannot be cancelled through this one", async () => {
    const { ops, release } = fakeOps();
    const d = dispatcher(ops);
    const other = start("b");
    const p = d.run(other, noProgress);
    const c = await d.run({ id: id(), action: "cancel", app: "a", params: { commandId: other.id } }, noProgress);
    expect(c.result).toEqual({ cancelled: false, target: "unknown" });
    await release("b");
    expect((await p).ok).toBe(true);
  });

  it("aborts a running action at its deadline and names the action, the time and the host", async () => {
    const { ops } = fakeOps();
    const d = dispatcher(ops);
    const now = Date.now();
    const t0 = Date.now();
    const out = await d.run(start("a", { issuedAt: new Date(now).toISOString(), deadlineAt: new Date(now + 300).toISOString() }), noProgress);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(out).toMatchObject({ ok: false, error: "deadline passed: start ran longer than 1 s on host gpu-box-1", observed: { app: "a" } });
    const long = await d.run(start("b", { issuedAt: new Date(now - 45 * 60_000).toISOString(), deadlineAt: new Date(now - 1).toISOString() }), noProgress);
    expect(long.error).toBe("deadline passed: start ran longer than 45 min on host gpu-box-1");
  });

  it("an action that ignores its signal still gets an answer at the deadline, and its app is not blocked forever", async () => {
    const ops = {
      actions: { start: () => new Promise(() => {}), stop: async () => ({ message: "stopped" }) },
      observe: async (app: string) => observation(app, { status: "STOPPED" }),
      observer: { current: () => undefined },
    } as unknown as Ops;
    const d = dispatcher(ops);
    const now = Date.now();
    const stuck = await d.run(start("a", { deadlineAt: new Date(now + 100).toISOString() }), noProgress);
    expect(stuck).toMatchObject({ ok: false, error: expect.stringMatching(/^deadline passed: start/) });
    expect(await d.run({ id: id(), action: "stop", app: "a", params: {} } as ValidCommand, noProgress)).toMatchObject({ ok: true, result: { message: "stopped" } });
  });

  it("a throw anywhere becomes an error outcome; no observation after a deinstall or for a host-wide command", async () => {
    const { ops } = fakeOps();
    (ops.actions as unknown as { stop: () => never }).stop = () => {
      throw new RangeError("unexpected");
    };
    const d = dispatcher(ops);
    expect(await d.run({ id: id(), action: "stop", app: "a", params: {} } as ValidCommand, noProgress)).toMatchObject({ ok: false, error: "unexpected" });
    const gone: Outcome = await d.run({ id: id(), action: "deinstall", app: "a", params: {} } as ValidCommand, noProgress);
    expect(gone).toEqual({ ok: true, result: { message: "deinstalled" } });
    const ping = await d.run({ id: id(), action: "ping", app: null, params: { echo: "x" } } as ValidCommand, noProgress);
    expect(ping).toMatchObject({ ok: true, result: { pong: true, echo: "x" } });
    expect(ping).not.toHaveProperty("observed");
  });

  it("an app that is not on this host is observed as STOPPED, not installed; without Docker the error says so", async () => {
    const { ops } = fakeOps();
    (ops.actions as unknown as { stop: () => Promise<object> }).stop = async () => ({ message: "not installed" });
    const out = await dispatcher(ops).run({ id: id(), action: "stop", app: "ghost", params: {} } as ValidCommand, noProgress);
    expect(out.observed).toMatchObject({ app: "ghost", status: "STOPPED", health: "unknown", lastError: "not installed on this host" });
    const down = await dispatcher(null).run(start("a"), noProgress);
    expect(down).toEqual({ ok: false, error: "Docker is not reachable on this host" });
  });

  it("tells the deploy hook the commit an app was deployed at, only on success", async () => {
    const deployed: string[] = [];
    const ops = {
      actions: {
        reinstall: async () => ({ commitSha: "a".repeat(40), message: "reinstalled" }),
        update: async () => {
          throw new Error("install failed");
        },
        stop: async () => ({ commitSha: "b".repeat(40), message: "stopped" }),
      },
      observe: async (app: string) => observation(app),
      observer: { current: () => undefined },
    } as unknown as Ops;
    const d = new Dispatcher({ hostId: "h", ops: async () => ops, unavailable: () => "", queue: new AppQueue(), log: () => {}, onDeployed: (app, sha) => void deployed.push(`${app}@${sha.slice(0, 1)}`) });
    await d.run({ id: id(), action: "reinstall", app: "a", params: { spec: {} as never, clean: false } }, noProgress);
    await d.run({ id: id(), action: "update", app: "a", params: { spec: {} as never } }, noProgress);
    await d.run({ id: id(), action: "stop", app: "a", params: {} }, noProgress);
    expect(deployed).toEqual(["a@a"]);
  });
});


describe("Dispatcher: secret values never leave in output or errors", () => {
  it("writes the app's secret files from the command, and hides every value in progress output and the error", async () => {
    const written: Record<string, string>[] = [];
    const files = new Map<string, string[]>();
    const ops = {
      secrets: {
        write: async (app: string, values: Record<string, string>) => {
          written.push(values);
          files.set(app, Object.values(values));
        },
        values: async (app: string) => files.get(app) ?? [],
      },
      actions: {
        provision: async (_spec: unknown, ctx: ActionContext) => {
          ctx.progress({ step: "install", message: "using hf_secret_value_1", output: ["token is hf_secret_value_1", "git ghp_git_token_2 ok"] });
          throw new Error("install failed: echo hf_secret_value_1 and ghp_git_token_2");
        },
      },
      observe: async (app: string) => observation(app),
      observer: { current: (app: string) => observation(app) },
    } as unknown as Ops;
    const progress: unknown[] = [];
    const cmd = {
      id: id(),
      action: "provision",
      app: "web",
      params: { spec: { name: "web", secretNames: ["HF_TOKEN"] } },
      secrets: { commandId: "x", hostId: "gpu-box-1", values: { HF_TOKEN: "hf_secret_value_1" }, git: { token: "ghp_git_token_2" } },
    } as unknown as ValidCommand;
    const outcome = await dispatcher(ops).run(cmd, (p) => progress.push(p));
    expect(written).toEqual([{ HF_TOKEN: "hf_secret_value_1" }]);
    expect(outcome.ok).toBe(false);
    expect(outcome.error).toBe("install failed: echo *** and ***");
    expect(JSON.stringify(progress)).not.toMatch(/hf_secret_value_1|ghp_git_token_2/);
    expect(JSON.stringify(progress)).toContain("token is ***");
  });
});
