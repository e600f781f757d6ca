import { decideAction, type OpenCommand } from "./action-rules";

const placed = { name: "web", placed: true };
const host = { revoked: false };
const cmd = (action: string, params: Record<string, unknown> = {}): OpenCommand => ({ id: `c-${action}`, action, params });

describe("decideAction", () => {
  it("an app waiting for a host: deinstall removes the record, anything else is refused", () => {
    expect(decideAction("deinstall", { name: "web", placed: false }, null, [])).toEqual({ kind: "remove-record" });
    expect(decideAction("start", { name: "web", placed: false }, null, [])).toMatchObject({ kind: "refuse", code: "PRECONDITION_FAILED", message: "is waiting for a host" });
  });

  it("refuses every action on a revoked host (only a forced removal takes the app off)", () => {
    expect(decideAction("stop", placed, { revoked: true }, [cmd("stop")])).toMatchObject({ kind: "refuse", code: "PRECONDITION_FAILED", message: expect.stringMatching(/revoked host/) });
  });

  it("answers with the same action already on its way instead of queueing another", () => {
    expect(decideAction("restart", placed, host, [cmd("restart")])).toEqual({ kind: "same", commandId: "c-restart" });
    // A reinstall with another `clean` choice is a different request.
    expect(decideAction("reinstall", placed, host, [cmd("reinstall", { clean: true })], { clean: true })).toEqual({ kind: "same", commandId: "c-reinstall" });
    expect(decideAction("reinstall", placed, host, [cmd("reinstall", { clean: true })], { clean: false })).toMatchObject({ kind: "refuse", code: "CONFLICT" });
    // A rollback is a reinstall pinned to a commit: the same commit coalesces, another is refused as busy.
    const sha = "a".repeat(40);
    expect(decideAction("reinstall", placed, host, [cmd("reinstall", { clean: false, commitSha: sha })], { commitSha: sha })).toEqual({ kind: "same", commandId: "c-reinstall" });
    expect(decideAction("reinstall", placed, host, [cmd("reinstall", { clean: false, commitSha: sha })], {})).toMatchObject({ kind: "refuse", code: "CONFLICT" });
  });

  it("a deploy on its way blocks start, restart and reinstall, but not stop or deinstall", () => {
    for (const deploying of ["provision", "reinstall", "update"]) {
      for (const verb of ["start", "restart"] as const) {
        expect(decideAction(verb, placed, host, [cmd(deploying)])).toEqual({ kind: "refuse", code: "CONFLICT", message: `is busy: ${deploying} is still in progress (cancel it, or wait for it to finish)` });
      }
      expect(decideAction("stop", placed, host, [cmd(deploying)])).toEqual({ kind: "queue" });
      expect(decideAction("deinstall", placed, host, [cmd(deploying)])).toEqual({ kind: "queue" });
    }
  });

  it("a deinstall on its way blocks everything, with no cancel hint", () => {
    expect(decideAction("stop", placed, host, [cmd("deinstall")])).toEqual({ kind: "refuse", code: "CONFLICT", message: "is busy: deinstall is still in progress" });
  });

  it("queues when nothing is in the way (a start or stop on its way does not block the other)", () => {
    expect(decideAction("start", placed, host, [])).toEqual({ kind: "queue" });
    expect(decideAction("stop", placed, host, [cmd("start")])).toEqual({ kind: "queue" });
    expect(decideAction("start", placed, host, [cmd("stop")])).toEqual({ kind: "queue" });
  });
});
