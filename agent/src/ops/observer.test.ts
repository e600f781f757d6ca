import type Dockerode from "dockerode";
import { describe, expect, it } from "vitest";
import type { AppContainer, ContainerOps } from "./containers";
import { AppObserver } from "./observer";
import type { ProbeResult } from "./probe";

/** The containers port as far as the observer uses it, with a container state the test sets. */
function world() {
  const state: { container: AppContainer | null; reachable: boolean; probes: number } = { container: null, reachable: false, probes: 0 };
  const containers = {
    findApp: async () => state.container,
    lastLines: async () => ["model not found"],
  } as unknown as ContainerOps;
  const observer = new AppObserver({
    docker: {} as Dockerode,
    containers,
    hostId: "h1",
    port: () => 8080,
    probe: async (): Promise<ProbeResult> => (state.probes++, { tcp: state.reachable, reachable: state.reachable }),
    log: () => {},
  });
  return { state, observer };
}
const running = (startedAt = Date.now() - 60_000): AppContainer => ({ id: "c1", snapshot: { state: "running", startedAt } });

describe("AppObserver.observe", () => {
  it("is undefined for an app it does not track", async () => {
    expect(await world().observer.observe("ghost")).toBeUndefined();
  });

  it("looks again and probes once: a running, answering app is RUNNING and reachable whatever was believed", async () => {
    const { state, observer } = world();
    observer.track("web");
    expect(observer.current("web")).toMatchObject({ status: "STOPPED" });
    state.container = running();
    state.reachable = true;
    expect(await observer.observe("web")).toMatchObject({ app: "web", status: "RUNNING", health: "reachable", containerState: "running", lastError: null });
    expect(state.probes).toBe(1);
  });

  it("a running app whose port does not answer yet is STARTING; a stopped one is not probed", async () => {
    const { state, observer } = world();
    observer.track("web");
    state.container = running(Date.now());
    expect(await observer.observe("web")).toMatchObject({ status: "STARTING", health: "unreachable" });
    state.container = { id: "c1", snapshot: { state: "exited", exitCode: 3 } };
    const probes = state.probes;
    expect(await observer.observe("web")).toMatchObject({ status: "STOPPED", containerState: "exited", exitCode: 3 });
    expect(state.probes).toBe(probes);
  });

  it("while an action runs it answers what the action says, without looking", async () => {
    const { state, observer } = world();
    observer.track("web");
    observer.begin("web", "deploy", "clone");
    state.container = running();
    state.reachable = true;
    expect(await observer.observe("web")).toMatchObject({ status: "STARTING", phase: "clone" });
    expect(state.probes).toBe(0);
    await observer.settle("web", "cancelled");
    expect(observer.current("web")).toMatchObject({ phase: null, lastError: "cancelled" });
  });

  it("a deploy that ends with a dead container says why, with its last lines", async () => {
    const { state, observer } = world();
    observer.track("web");
    observer.begin("web", "deploy", "start");
    state.container = { id: "c1", snapshot: { state: "exited", exitCode: 1 } };
    await observer.settle("web");
    expect(observer.current("web")).toMatchObject({ status: "STOPPED", lastError: "exited with code 1; last output:\nmodel not found" });
  });

  it("a failure read back from an app's record is reported after a restart", () => {
    const { observer } = world();
    observer.track("web");
    observer.restoreFailure("web", "image x could not be pulled");
    expect(observer.current("web")).toMatchObject({ status: "STOPPED", lastError: "image x could not be pulled" });
  });
});
