// The agent's gate for console commands. In order: the signature over the exact bytes against the
// pinned console key, the target host, the journal (a replay is answered from it, never run
// again), the expiry, and every parameter re-validated with the contract's schemas. Only then is
// the command journaled, acknowledged and run. Commands for one app run one after another.
import { createHash, type KeyObject } from "node:crypto";
import type { z } from "zod";
import {
  PingParamsSchema,
  verifyCommand,
  type AgentMessage,
  type CommandEnvelope,
  type CommandPayload,
  type RefusalCode,
} from "./contract/protocol";
import { CleanupParamsSchema } from "./contract/cleanup";
import { actionParamsSchema } from "./contract/spec";
import { fieldErrors, type RepositoryRules } from "./contract/validation";
import type { Executor } from "./executor";
import type { Journal, JournalEntry } from "./journal";
import type { Logger } from "./log";

export interface CommandProcessorOptions {
  hostId: string;
  consoleKey: KeyObject;
  journal: Journal;
  executor: Executor;
  rules: RepositoryRules;
  /** Sends to the console when connected; drops otherwise (re-delivery recovers results). */
  send: (msg: AgentMessage) => void;
  log: Logger;
  now?: () => number;
}

const MAX_RESULT_BYTES = 64 * 1024;

export class CommandProcessor {
  /** Commands running in this process, by id. */
  private readonly running = new Map<string, Promise<void>>();
  /** The tail of each app's queue. */
  private readonly appQueues = new Map<string, Promise<void>>();
  private readonly specRules: ReturnType<typeof actionParamsSchema>;

  constructor(private readonly o: CommandProcessorOptions) {
    this.specRules = actionParamsSchema(o.rules);
  }

  /** Resolves once the command is refused, answered from the journal, or finished. */
  async handle(env: Pick<CommandEnvelope, "payload" | "sig">): Promise<void> {
    const { log } = this.o;
    const checked = verifyCommand(env, this.o.consoleKey);
    if (!checked.ok) return this.refuse(checked.code, checked.reason);
    const cmd = checked.payload;
    const ctx = { id: cmd.id, action: cmd.action, app: cmd.app };

    // A command for another host could only come from a misrouted or replayed delivery.
    if (cmd.hostId !== this.o.hostId) return this.refuse("wrong-host", `command is for host ${cmd.hostId}, this is ${this.o.hostId}`, cmd);

    const hash = createHash("sha256").update(env.payload).digest("hex");
    const seen = this.o.journal.get(cmd.id);
    if (seen) return this.replay(seen, hash, cmd);

    const now = (this.o.now ?? Date.now)();
    if (Date.parse(cmd.expiresAt) <= now) return this.refuse("expired", `command expired at ${cmd.expiresAt}`, cmd);

    const params = this.validate(cmd);
    if (!params.ok) return this.refuse("invalid-params", params.reason, cmd);

    log("info", "command verified", ctx);
    this.o.journal.begin({ id: cmd.id, hash, action: cmd.action, app: cmd.app, expiresAt: cmd.expiresAt });
    this.o.send({ type: "ack", id: cmd.id });
    return this.start(cmd, params.value);
  }

  /** Waits for every running command (graceful shutdown). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.running.values()]);
  }

  private replay(seen: JournalEntry, hash: string, cmd: CommandPayload): Promise<void> | void {
    const ctx = { id: cmd.id, action: cmd.action, app: cmd.app };
    if (seen.hash !== hash) return this.refuse("replay-mismatch", "command id was already used for a different command", cmd);
    if (seen.state === "done") {
      this.o.log("info", "command replayed: already applied, answered from the journal, not run again", ctx);
      this.o.send({ type: "ack", id: cmd.id, duplicate: true });
      this.o.send(resultMessage(seen));
      return;
    }
    const inFlight = this.running.get(cmd.id);
    if (inFlight) {
      this.o.log("info", "command replayed while running: acknowledged again, not run twice", ctx);
      this.o.send({ type: "ack", id: cmd.id, duplicate: true });
      return inFlight;
    }
    // Journaled as running but not running here: the agent stopped part-way. Lifecycle actions
    // are idempotent, so finishing the job means running it again once.
    const params = this.validate(cmd);
    if (!params.ok) return this.refuse("invalid-params", params.reason, cmd);
    this.o.log("warn", "command was interrupted by an agent restart: running it again", ctx);
    this.o.send({ type: "ack", id: cmd.id });
    return this.start(cmd, params.value);
  }

  private start(cmd: CommandPayload, params: Record<string, unknown>): Promise<void> {
    const key = cmd.app ?? "";
    const run = async () => {
      const t0 = Date.now();
      let outcome: { ok: boolean; result?: Record<string, unknown>; error?: string };
      try {
        const progress = (p: Parameters<Parameters<Executor["run"]>[3]>[0]) => this.o.send({ type: "progress", id: cmd.id, progress: p });
        outcome = { ok: true, result: capResult(await this.o.executor.run(cmd.action, cmd.app, params, progress)) };
      } catch (e) {
        outcome = { ok: false, error: ((e as Error)?.message ?? String(e)).slice(0, 4000) };
      }
      const entry = this.o.journal.finish(cmd.id, outcome);
      this.o.log(outcome.ok ? "info" : "warn", "command executed", {
        id: cmd.id,
        action: cmd.action,
        app: cmd.app,
        ok: outcome.ok,
        ms: Date.now() - t0,
        ...(outcome.error ? { error: outcome.error } : {}),
      });
      this.o.send(resultMessage(entry));
    };
    // ping has no app and runs at once; an app's commands run in the order they arrived.
    const prev = key ? this.appQueues.get(key) ?? Promise.resolve() : Promise.resolve();
    const p = prev.then(run, run).finally(() => {
      this.running.delete(cmd.id);
      if (key && this.appQueues.get(key) === p) this.appQueues.delete(key);
    });
    this.running.set(cmd.id, p);
    if (key) this.appQueues.set(key, p);
    return p;
  }

  private validate(cmd: CommandPayload): { ok: true; value: Record<string, unknown> } | { ok: false; reason: string } {
    const bad = (fields: Record<string, string>) => ({
      ok: false as const,
      reason: "invalid parameters: " + Object.entries(fields).map(([k, v]) => `${k} ${v}`).join("; "),
    });
    let schema: z.ZodType;
    if (cmd.action === "ping") schema = PingParamsSchema;
    else if (cmd.action === "cleanup") {
      // Host-wide: it names no app, and the agent picks what goes from its own fresh scan.
      if (cmd.app !== null) return bad({ app: "must be null for cleanup" });
      schema = CleanupParamsSchema;
    } else {
      if (cmd.app === null) return bad({ app: "is required for " + cmd.action });
      schema = this.specRules[cmd.action];
    }
    const r = schema.safeParse(cmd.params);
    if (!r.success) return bad(fieldErrors(r.error));
    const value = r.data as Record<string, unknown>;
    const spec = value.spec as { name?: string } | undefined;
    if (spec && spec.name !== cmd.app) return bad({ "spec.name": `must match the command's app (${cmd.app})` });
    return { ok: true, value };
  }

  private refuse(code: RefusalCode, reason: string, cmd?: CommandPayload): void {
    this.o.log("warn", "command refused", { code, reason, ...(cmd ? { id: cmd.id, action: cmd.action, app: cmd.app } : {}) });
    // Only an id from verified bytes is echoed: a forged command gets no say about real rows.
    this.o.send({ type: "refused", code, reason: reason.slice(0, 1000), ...(cmd ? { id: cmd.id } : {}) });
  }
}

function resultMessage(e: JournalEntry): AgentMessage {
  return { type: "result", id: e.id, ok: e.ok ?? false, ...(e.result ? { result: e.result } : {}), ...(e.error ? { error: e.error } : {}) };
}

function capResult(r: Record<string, unknown>): Record<string, unknown> {
  const text = JSON.stringify(r ?? {});
  return text.length > MAX_RESULT_BYTES ? { truncated: true, bytes: text.length } : JSON.parse(text);
}
