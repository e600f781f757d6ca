// The dispatcher: one table from a verified, validated command's action to the code that runs it.
// An app's commands go through the one per-app queue; `cancel` never waits in it; `ping` and the
// host-wide `cleanup` and `prepull` run at once. Every command gets an AbortSignal, aborted by a cancel or at
// its deadline. Whatever happens (success, no-op, failure, cancel, deadline, a throw anywhere) the
// answer is an outcome, and for an app it carries the agent's observation of that app right after.
import type { CancelParamsSchema, CommandAction, HostAction, PingParamsSchema, PrepullParamsSchema } from "./contract/protocol";
import type { CleanupParams } from "./contract/cleanup";
import { redact } from "./contract/app-config";
import { secretValuesOf, type CommandSecrets } from "./contract/command-secrets";
import { withCommandSecrets } from "./ops/command-context";
import type { Progress, StatusReport } from "./contract/reports";
import type { AppAction, actionParamsSchema } from "./contract/spec";
import type { z } from "zod";
import type { Logger } from "./log";
import type { ActionContext } from "./ops/actions";
import { AbortedError, errorMessage, formatDuration } from "./ops/errors";
import type { Ops } from "./ops/ops";
import type { AppQueue } from "./queue";

type AppActionParams = { [A in AppAction]: z.output<ReturnType<typeof actionParamsSchema>[A]> };
export type CommandParams = AppActionParams & {
  cancel: z.output<typeof CancelParamsSchema>;
  ping: z.output<typeof PingParamsSchema>;
  cleanup: CleanupParams;
  prepull: z.output<typeof PrepullParamsSchema>;
};

/** A command whose signature, host, expiry and parameters the gate has checked (once). */
export type ValidCommand = {
  [A in CommandAction]: {
    id: string;
    action: A;
    app: A extends HostAction ? null : string;
    params: CommandParams[A];
    issuedAt?: string;
    deadlineAt?: string;
    /** Verified secret values sent beside the command (never journaled). */
    secrets?: CommandSecrets;
  };
}[CommandAction];

export interface Outcome {
  ok: boolean;
  result?: Record<string, unknown>;
  error?: string;
  /** The app's observation once the command settled (absent for host-wide commands and a deinstalled app). */
  observed?: StatusReport;
}

/** What the command gate hands verified commands to (tests substitute their own). */
export interface CommandRunner {
  run(cmd: ValidCommand, progress: (p: Progress) => void): Promise<Outcome>;
  /** The app's observation now (replays, refusals to run); undefined when it cannot be made. */
  observe(app: string): Promise<StatusReport | undefined>;
}

export interface DispatcherOptions {
  hostId: string;
  /** Resolves to the ops layer once it is up, or null when there is none (Docker down). */
  ops: () => Promise<Ops | null>;
  unavailable: () => string;
  queue: AppQueue;
  log: Logger;
  now?: () => number;
  /** How long a cancel waits for its running target to unwind before it answers; default 20 s. */
  cancelWaitMs?: number;
  /** An action deployed or kept the app at `commitSha` (the dependency inventory hooks in here). */
  onDeployed?: (app: string, commitSha: string) => void;
}

/** Actions whose success means the app's code is deployed at the result's commit. */
const DEPLOYS = new Set<CommandAction>(["provision", "reinstall", "update", "start", "restart"]);

type Ctx = ActionContext & { ops: () => Promise<Ops> };
type Handler<A extends CommandAction> = (cmd: Extract<ValidCommand, { action: A }>, ctx: Ctx) => Promise<object>;

interface InFlight {
  app: string | null;
  controller: AbortController;
  done: Promise<void>;
}

const OBSERVE_TIMEOUT_MS = 5000;

export async function runPing(params: CommandParams["ping"]): Promise<Record<string, unknown>> {
  const delayMs = params.delayMs ?? 0;
  if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
  return { pong: true, ...(params.echo !== undefined ? { echo: params.echo } : {}), at: new Date().toISOString() };
}

export class Dispatcher implements CommandRunner {
  private readonly inflight = new Map<string, InFlight>();
  private readonly handlers: { [A in CommandAction]: Handler<A> } = {
    provision: (c, x) => x.ops().then((o) => o.actions.provision(c.params.spec, x)),
    start: (c, x) => x.ops().then((o) => o.actions.start(c.app, c.params.spec, { ...x, force: c.params.force })),
    stop: (c, x) => x.ops().then((o) => o.actions.stop(c.app, x)),
    restart: (c, x) => x.ops().then((o) => o.actions.restart(c.app, c.params.spec, { ...x, force: c.params.force })),
    reinstall: (c, x) => x.ops().then((o) => o.actions.reinstall(c.params.spec, c.params.clean, x, c.params.commitSha)),
    update: (c, x) => x.ops().then((o) => o.actions.update(c.params.spec, x)),
    deinstall: (c, x) => x.ops().then((o) => o.actions.deinstall(c.app, x, c.params.appId)),
    cancel: (c) => this.cancel(c),
    ping: (c) => runPing(c.params),
    cleanup: (c, x) => x.ops().then((o) => o.cleanup(c.params)),
    prepull: (c, x) => x.ops().then((o) => o.prepull(c.params.image, x)),
  };

  constructor(private readonly o: DispatcherOptions) {}

  async run(cmd: ValidCommand, progress: (p: Progress) => void): Promise<Outcome> {
    const controller = new AbortController();
    let finished!: () => void;
    const entry: InFlight = { app: cmd.app, controller, done: new Promise<void>((r) => (finished = r)) };
    this.inflight.set(cmd.id, entry);
    const timer = this.armDeadline(cmd, controller);
    // Every text that leaves for the console (progress output, errors) is cleared of the secret
    // values this command carries and the app's stored ones.
    const hidden = [...secretValuesOf(cmd.secrets), ...(cmd.app ? await this.storedSecrets(cmd.app) : [])];
    const hide = (text: string) => (hidden.length ? redact(text, hidden) : text);
    const ctx: Ctx = { signal: controller.signal, progress: safeProgress(progress, hide), ops: () => this.requireOps() };
    let outcome: Outcome;
    try {
      const handler = this.handlers[cmd.action] as Handler<CommandAction>;
      const task = async () => {
        const spec = (cmd.params as { spec?: { name: string; secretNames?: string[] } }).spec;
        if (spec) await this.applySecrets(spec, cmd.secrets, hidden);
        return withCommandSecrets(cmd.secrets, async () => ({ ...(await handler(cmd as never, ctx)) }) as Record<string, unknown>);
      };
      // An app's commands wait their turn; cancel and host-wide commands do not.
      const result = cmd.app !== null && cmd.action !== "cancel" ? await this.o.queue.run(cmd.app, cmd.id, task, controller.signal) : await untilAborted(task(), controller.signal);
      outcome = { ok: true, result };
      if (cmd.app !== null && DEPLOYS.has(cmd.action) && typeof result.commitSha === "string") {
        try {
          this.o.onDeployed?.(cmd.app, result.commitSha);
        } catch (err) {
          this.o.log("warn", "deploy hook failed", { app: cmd.app, error: errorMessage(err) });
        }
      }
    } catch (err) {
      outcome = { ok: false, error: hide(controller.signal.aborted ? failureReason(controller.signal) : errorMessage(err)).slice(0, 4000) };
    } finally {
      if (timer) clearTimeout(timer);
      this.inflight.delete(cmd.id);
      finished();
    }
    if (cmd.app !== null && !(outcome.ok && cmd.action === "deinstall")) {
      const observed = await this.observe(cmd.app);
      if (observed) outcome.observed = observed;
    }
    return outcome;
  }

  /** The app's secret files follow the command: the values it carries, or none when its spec names none. */
  private async applySecrets(spec: { name: string; secretNames?: string[] }, secrets: CommandSecrets | undefined, hidden: string[]): Promise<void> {
    const ops = await this.requireOps();
    if (!ops.secrets) return; // an ops layer without secret files (test doubles)
    if (secrets) await ops.secrets.write(spec.name, secrets.values);
    else if (!spec.secretNames?.length) await ops.secrets.write(spec.name, {});
    hidden.push(...(await ops.secrets.values(spec.name)));
  }

  private async storedSecrets(app: string): Promise<string[]> {
    try {
      const ops = await this.o.ops();
      return (await ops?.secrets?.values(app)) ?? [];
    } catch {
      return [];
    }
  }

  async observe(app: string): Promise<StatusReport | undefined> {
    try {
      const ops = await this.o.ops();
      if (!ops) return undefined;
      const timeout = delay(OBSERVE_TIMEOUT_MS);
      const observed = await Promise.race([ops.observe(app), timeout.then(() => ops.observer.current(app))]);
      return observed ?? notInstalled(app, this.now());
    } catch (err) {
      this.o.log("warn", "could not observe the app", { app, error: errorMessage(err) });
      return undefined;
    }
  }

  /** Stops a queued or running command of the same app; answers once a running one has unwound. */
  private async cancel(cmd: Extract<ValidCommand, { action: "cancel" }>): Promise<{ cancelled: boolean; target: "queued" | "running" | "unknown" }> {
    const id = cmd.params.commandId;
    const target = this.inflight.get(id);
    if (!target || target.app !== cmd.app || id === cmd.id) return { cancelled: false, target: "unknown" };
    const where = this.o.queue.state(id) ?? "running";
    this.o.log("info", "cancelling a command", { id, app: cmd.app, target: where, by: cmd.id });
    target.controller.abort(new AbortedError("cancel", where === "queued" ? "cancelled before it ran" : "cancelled"));
    if (where === "running") {
      await Promise.race([target.done, delay(this.o.cancelWaitMs ?? 20_000)]);
    }
    return { cancelled: true, target: where };
  }

  private armDeadline(cmd: ValidCommand, controller: AbortController): NodeJS.Timeout | undefined {
    if (!cmd.deadlineAt) return undefined;
    const deadline = Date.parse(cmd.deadlineAt);
    const now = this.now();
    const allowedMs = deadline - (cmd.issuedAt ? Date.parse(cmd.issuedAt) : now);
    const allowed = formatDuration(allowedMs);
    const reason = () => new AbortedError("deadline", `deadline passed: ${cmd.action} ran longer than ${allowed} on host ${this.o.hostId}`);
    if (deadline <= now) {
      controller.abort(reason());
      return undefined;
    }
    const timer = setTimeout(() => controller.abort(reason()), Math.min(deadline - now, 2 ** 31 - 1));
    timer.unref?.();
    return timer;
  }

  private async requireOps(): Promise<Ops> {
    const ops = await this.o.ops();
    if (!ops) throw new Error(this.o.unavailable());
    return ops;
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }
}

/** A timer that does not keep the process alive. */
function delay(ms: number): Promise<undefined> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(undefined), ms) as unknown as { unref?: () => void };
    t.unref?.();
  });
}

function failureReason(signal: AbortSignal): string {
  return signal.reason instanceof Error ? signal.reason.message : "cancelled";
}

function notInstalled(app: string, now: number): StatusReport {
  return { app, status: "STOPPED", health: "unknown", phase: null, lastError: "not installed on this host", at: new Date(now).toISOString() };
}

/** A task not in the queue still answers at its deadline or cancel, even if it does not unwind. */
function untilAborted<T>(task: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    task.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

const OUTPUT_LINE_MAX = 4000;

/** Output lines are capped and split into messages the protocol accepts; a failing sink never fails the action. */
function safeProgress(progress: (p: Progress) => void, hide: (text: string) => string): (p: Progress) => void {
  return (p) => {
    try {
      if (p.message !== undefined) p = { ...p, message: hide(p.message) };
      const out = p.output?.map((l) => hide(l).slice(0, OUTPUT_LINE_MAX));
      if (out && out.length > 200) {
        for (let i = 0; i < out.length; i += 200) progress({ ...p, output: out.slice(i, i + 200) });
        return;
      }
      progress(out ? { ...p, output: out } : p);
    } catch {
      // a failing progress sink must not fail the action
    }
  };
}
