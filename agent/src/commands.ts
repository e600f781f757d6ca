// The agent's gate for console commands. In order: the signature over the exact bytes against the
// pinned console key, the target host, the journal (a replay is answered from it, never run
// again), the expiry, and every parameter validated with the contract's schemas — the one place
// they are checked. Only then is the command journaled, acknowledged and handed to the
// dispatcher. Whatever goes wrong after the checks (a journal that cannot be written, a throw
// anywhere) is answered with an error result, never with silence.
import { createHash, type KeyObject } from "node:crypto";
import type { z } from "zod";
import {
  CancelParamsSchema,
  PingParamsSchema,
  PrepullParamsSchema,
  verifyCommand,
  type AgentMessage,
  type CommandEnvelope,
  type CommandPayload,
  type RefusalCode,
} from "./contract/protocol";
import { CleanupParamsSchema } from "./contract/cleanup";
import { verifyCommandSecrets } from "./contract/command-secrets";
import type { StatusReport } from "./contract/reports";
import { actionParamsSchema } from "./contract/spec";
import { fieldErrors, type RepositoryRules } from "./contract/validation";
import type { CommandRunner, Outcome, ValidCommand } from "./dispatch";
import type { Journal, JournalEntry } from "./journal";
import type { Logger } from "./log";

export interface CommandProcessorOptions {
  hostId: string;
  consoleKey: KeyObject;
  journal: Journal;
  runner: CommandRunner;
  rules: RepositoryRules;
  /** Sends to the console when connected; drops otherwise (re-delivery recovers results). */
  send: (msg: AgentMessage) => void;
  log: Logger;
  now?: () => number;
}

const MAX_RESULT_BYTES = 64 * 1024;

export class CommandProcessor {
  /** Commands running in this process, by id (a re-delivery while running is not run twice). */
  private readonly running = new Map<string, Promise<void>>();
  private readonly specRules: ReturnType<typeof actionParamsSchema>;

  constructor(private readonly o: CommandProcessorOptions) {
    this.specRules = actionParamsSchema(o.rules);
  }

  /** Resolves once the command is refused, answered from the journal, or finished. */
  async handle(env: Pick<CommandEnvelope, "payload" | "sig" | "secrets">): Promise<void> {
    const { log } = this.o;
    const checked = verifyCommand(env, this.o.consoleKey);
    if (!checked.ok) return this.refuse(checked.code, checked.reason);
    const cmd = checked.payload;
    const ctx = { id: cmd.id, action: cmd.action, app: cmd.app };

    // A command for another host could only come from a misrouted or replayed delivery.
    if (cmd.hostId !== this.o.hostId) return this.refuse("wrong-host", `command is for host ${cmd.hostId}, this is ${this.o.hostId}`, cmd);

    const hash = createHash("sha256").update(env.payload).digest("hex");
    const seen = this.o.journal.get(cmd.id);
    if (seen) return this.replay(seen, hash, cmd, env);

    const now = (this.o.now ?? Date.now)();
    if (Date.parse(cmd.expiresAt) <= now) return this.refuse("expired", `command expired at ${cmd.expiresAt}`, cmd);

    const valid = this.validate(cmd, env);
    if (!valid.ok) return this.refuse("invalid-params", valid.reason, cmd);

    log("info", "command verified", ctx);
    try {
      this.o.journal.begin({ id: cmd.id, hash, action: cmd.action, app: cmd.app, expiresAt: cmd.expiresAt });
    } catch (e) {
      // Not journaled means it could run twice after a restart: answer instead of running it.
      return this.answerUnrun(valid.cmd, `the agent could not record the command in its journal: ${errorText(e)}`);
    }
    try {
      this.o.send({ type: "ack", id: cmd.id });
    } catch (e) {
      log("warn", "could not acknowledge a command; running it anyway", { ...ctx, error: errorText(e) });
    }
    return this.start(valid.cmd);
  }

  /** Waits for every running command (graceful shutdown). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.running.values()]);
  }

  private async replay(seen: JournalEntry, hash: string, cmd: CommandPayload, env: Pick<CommandEnvelope, "secrets">): Promise<void> {
    const ctx = { id: cmd.id, action: cmd.action, app: cmd.app };
    if (seen.hash !== hash) return this.refuse("replay-mismatch", "command id was already used for a different command", cmd);
    if (seen.state === "done") {
      this.o.log("info", "command replayed: already applied, answered from the journal, not run again", ctx);
      this.o.send({ type: "ack", id: cmd.id, duplicate: true });
      // The outcome is the journal's; the observation is of now.
      this.o.send(resultMessage(seen, cmd.app ? await this.o.runner.observe(cmd.app).catch(() => undefined) : undefined));
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
    const valid = this.validate(cmd, env);
    if (!valid.ok) return this.refuse("invalid-params", valid.reason, cmd);
    this.o.log("warn", "command was interrupted by an agent restart: running it again", ctx);
    this.o.send({ type: "ack", id: cmd.id });
    return this.start(valid.cmd);
  }

  private start(cmd: ValidCommand): Promise<void> {
    const run = async () => {
      const t0 = Date.now();
      let outcome: Outcome;
      try {
        outcome = await this.o.runner.run(cmd, (p) => this.o.send({ type: "progress", id: cmd.id, progress: p }));
      } catch (e) {
        outcome = { ok: false, error: errorText(e) };
      }
      if (outcome.ok) outcome.result = capResult(outcome.result ?? {});
      this.o.log(outcome.ok ? "info" : "warn", "command executed", {
        id: cmd.id,
        action: cmd.action,
        app: cmd.app,
        ok: outcome.ok,
        ms: Date.now() - t0,
        ...(outcome.error ? { error: outcome.error } : {}),
      });
      this.finish(cmd, outcome);
    };
    const p = run()
      .catch((e) => this.o.log("error", "command handling failed after it ran", { id: cmd.id, error: errorText(e) }))
      .finally(() => this.running.delete(cmd.id));
    this.running.set(cmd.id, p);
    return p;
  }

  /** Journals the outcome and answers; a journal that cannot be written does not stop the answer. */
  private finish(cmd: ValidCommand, outcome: Outcome): void {
    const { observed, ...journaled } = outcome;
    let entry: Pick<JournalEntry, "id" | "ok" | "result" | "error">;
    try {
      entry = this.o.journal.finish(cmd.id, journaled);
    } catch (e) {
      this.o.log("error", "could not journal a command's result; answering anyway", { id: cmd.id, error: (e as Error).message });
      entry = { id: cmd.id, ...journaled };
    }
    try {
      this.o.send(resultMessage(entry, observed));
    } catch {
      // not connected: the journal answers the re-delivery
    }
  }

  private async answerUnrun(cmd: ValidCommand, error: string): Promise<void> {
    this.o.log("error", "command not run", { id: cmd.id, action: cmd.action, app: cmd.app, error });
    const observed = cmd.app ? await this.o.runner.observe(cmd.app).catch(() => undefined) : undefined;
    this.o.send(resultMessage({ id: cmd.id, ok: false, error }, observed));
  }

  /** The one validation of a command's parameters, into the typed command the dispatcher runs. */
  private validate(cmd: CommandPayload, env: Pick<CommandEnvelope, "secrets">): { ok: true; cmd: ValidCommand } | { ok: false; reason: string } {
    const bad = (fields: Record<string, string>) => ({
      ok: false as const,
      reason: "invalid parameters: " + Object.entries(fields).map(([k, v]) => `${k} ${v}`).join("; "),
    });
    let schema: z.ZodType;
    if (cmd.action === "ping" || cmd.action === "cleanup" || cmd.action === "prepull") {
      // Host-wide: it names no app (cleanup picks what goes from its own fresh scan).
      if (cmd.app !== null) return bad({ app: `must be null for ${cmd.action}` });
      schema = cmd.action === "ping" ? PingParamsSchema : cmd.action === "cleanup" ? CleanupParamsSchema : PrepullParamsSchema;
    } else {
      if (cmd.app === null) return bad({ app: "is required for " + cmd.action });
      schema = cmd.action === "cancel" ? CancelParamsSchema : this.specRules[cmd.action];
    }
    const r = schema.safeParse(cmd.params);
    if (!r.success) return bad(fieldErrors(r.error));
    const params = r.data as Record<string, unknown>;
    const spec = params.spec as { name?: string } | undefined;
    if (spec && spec.name !== cmd.app) return bad({ "spec.name": `must match the command's app (${cmd.app})` });
    const valid = { id: cmd.id, action: cmd.action, app: cmd.app, params, issuedAt: cmd.issuedAt, deadlineAt: cmd.deadlineAt } as ValidCommand;
    // Secret values ride beside the command, signed apart and bound to it; they are used for this
    // run only and never journaled.
    if (env.secrets) {
      const s = verifyCommandSecrets(env.secrets, this.o.consoleKey, { commandId: cmd.id, hostId: this.o.hostId });
      if (!s.ok) return bad({ secrets: s.reason });
      valid.secrets = s.secrets;
    }
    return { ok: true, cmd: valid };
  }

  private refuse(code: RefusalCode, reason: string, cmd?: CommandPayload): void {
    this.o.log("warn", "command refused", { code, reason, ...(cmd ? { id: cmd.id, action: cmd.action, app: cmd.app } : {}) });
    // Only an id from verified bytes is echoed: a forged command gets no say about real rows.
    this.o.send({ type: "refused", code, reason: reason.slice(0, 1000), ...(cmd ? { id: cmd.id } : {}) });
  }
}

function resultMessage(e: Pick<JournalEntry, "id" | "ok" | "result" | "error">, observed?: StatusReport): AgentMessage {
  return {
    type: "result",
    id: e.id,
    ok: e.ok ?? false,
    ...(e.result ? { result: e.result } : {}),
    ...(e.error ? { error: e.error.slice(0, 4000) } : {}),
    ...(observed ? { observed } : {}),
  };
}

function errorText(e: unknown): string {
  return ((e as Error)?.message ?? String(e)).slice(0, 4000);
}

function capResult(r: Record<string, unknown>): Record<string, unknown> {
  const text = JSON.stringify(r ?? {});
  return text.length > MAX_RESULT_BYTES ? { truncated: true, bytes: text.length } : JSON.parse(text);
}
