// When a requested app action (start, stop, restart, reinstall, deinstall) may be queued: the
// rules alone, with no database, so that they are read and unit-tested in one place
// (action-rules.test.ts). lifecycle.server.ts reads the facts and carries out the decision.

export type ActionVerb = "start" | "stop" | "restart" | "reinstall" | "deinstall";

/** Deploy-like commands that the operator may cancel (apps.cancel). */
export const CANCELLABLE: readonly string[] = ["provision", "reinstall", "update", "start", "restart"];
/** Commands that bring the app's code up: a start or restart must not overtake them. */
const DEPLOYING = ["provision", "reinstall", "update"];

export interface OpenCommand {
  id: string;
  action: string;
  params: Record<string, unknown>;
}

export type ActionDecision =
  /** The app waits for a host: deinstall removes the record at once. */
  | { kind: "remove-record" }
  | { kind: "refuse"; code: "PRECONDITION_FAILED" | "CONFLICT"; message: string }
  /** The same action is already on its way: answer with it instead of queueing another. */
  | { kind: "same"; commandId: string }
  | { kind: "queue" };

export function decideAction(
  verb: ActionVerb,
  app: { name: string; placed: boolean },
  host: { revoked: boolean } | null,
  open: OpenCommand[],
  opts: { clean?: boolean; commitSha?: string } = {},
): ActionDecision {
  if (!app.placed) {
    if (verb === "deinstall") return { kind: "remove-record" };
    return { kind: "refuse", code: "PRECONDITION_FAILED", message: "is waiting for a host" };
  }
  if (host?.revoked) {
    return { kind: "refuse", code: "PRECONDITION_FAILED", message: "is on a revoked host; only a forced removal (apps.deinstall with force, admin) takes it off" };
  }
  const same = open.find(
    (c) => c.action === verb && (verb !== "reinstall" || (Boolean(c.params.clean) === Boolean(opts.clean) && (c.params.commitSha ?? null) === (opts.commitSha ?? null))),
  );
  if (same) return { kind: "same", commandId: same.id };
  // A deinstall on its way blocks everything; a deploy blocks all but stop and deinstall.
  const blocking = open.find((c) => c.action === "deinstall" || (verb !== "stop" && verb !== "deinstall" && DEPLOYING.includes(c.action)));
  if (blocking) {
    const hint = CANCELLABLE.includes(blocking.action) ? " (cancel it, or wait for it to finish)" : "";
    return { kind: "refuse", code: "CONFLICT", message: `is busy: ${blocking.action} is still in progress${hint}` };
  }
  return { kind: "queue" };
}
