import type { StatusReport } from "../contract/reports";
import { QUICK_DEATH_MS, StatusTracker } from "./status";

function setup() {
  let now = 1_000_000;
  const reports: StatusReport[] = [];
  const tracker = new StatusTracker((r) => reports.push(r), () => now);
  tracker.track("app", "a".repeat(40));
  return { tracker, reports, advance: (ms: number) => (now += ms), last: () => reports[reports.length - 1]! };
}

describe("StatusTracker", () => {
  it("STARTING on container start, RUNNING once the port answers, slower probes then", () => {
    const { tracker, last } = setup();
    tracker.containerStarted("app");
    expect(last()).toMatchObject({ status: "STARTING", health: "unknown", containerState: "running" });
    expect(tracker.probeMode("app")).toBe("fast");
    tracker.probe("app", false);
    expect(last()).toMatchObject({ status: "STARTING", health: "unreachable" });
    tracker.probe("app", true);
    expect(last()).toMatchObject({ status: "RUNNING", health: "reachable", commitSha: "a".repeat(40) });
    expect(tracker.probeMode("app")).toBe("slow");
    tracker.probe("app", false);
    expect(last()).toMatchObject({ status: "RUNNING", health: "unreachable" });
    expect(tracker.probeMode("app")).toBe("fast");
  });

  it("a kill from outside is STOPPED with the signal and exit code", () => {
    const { tracker, last, advance } = setup();
    tracker.containerStarted("app");
    tracker.probe("app", true);
    advance(60_000);
    tracker.containerDied("app", { exitCode: 137, signal: "9" });
    expect(last()).toMatchObject({ status: "STOPPED", containerState: "exited", exitCode: 137, lastError: "killed by SIGKILL (exit code 137)" });
    expect(tracker.probeMode("app")).toBeNull();
  });

  it("a crash loop stays STOPPED with the last lines while Docker restarts it", () => {
    const { tracker, last, advance } = setup();
    tracker.containerStarted("app");
    advance(50);
    tracker.containerDied("app", { exitCode: 3, logs: ["boom", "Traceback"] });
    expect(last()).toMatchObject({ status: "STOPPED", exitCode: 3 });
    expect(last().lastError).toBe("exited with code 3; last output:\nboom\nTraceback");
    advance(100);
    tracker.containerStarted("app");
    expect(last()).toMatchObject({ status: "STOPPED", phase: "restarting after a crash (1)" });
    expect(last().lastError).toContain("boom");
    // It stays up long enough after all: an ordinary slow start.
    advance(QUICK_DEATH_MS + 1);
    tracker.probe("app", false);
    expect(last()).toMatchObject({ status: "STARTING" });
  });

  it("a stop the agent asked for is STOPPED without an error, even when the die event comes late", () => {
    const { tracker, last } = setup();
    tracker.containerStarted("app");
    tracker.probe("app", true);
    tracker.begin("app", "stop", "stop");
    tracker.end("app", { state: "exited", exitCode: 143 });
    expect(last()).toMatchObject({ status: "STOPPED", lastError: null, phase: null });
    tracker.containerDied("app", { exitCode: 143, signal: "15" });
    expect(last()).toMatchObject({ status: "STOPPED", lastError: null });
  });

  it("ignores the old container's death during a deploy and settles on the new one", () => {
    const { tracker, last, reports } = setup();
    tracker.containerStarted("app");
    tracker.probe("app", true);
    tracker.begin("app", "deploy", "fetch");
    expect(last()).toMatchObject({ status: "STARTING", phase: "fetch" });
    const count = reports.length;
    tracker.containerDied("app", { exitCode: 137, signal: "9" });
    expect(reports.slice(count).every((r) => r.status === "STARTING")).toBe(true);
    tracker.containerStarted("app");
    tracker.end("app", { state: "running" });
    expect(last()).toMatchObject({ status: "STARTING", phase: null, lastError: null });
    tracker.probe("app", true);
    expect(last()).toMatchObject({ status: "RUNNING" });
  });

  it("a failed action keeps its reason", () => {
    const { tracker, last } = setup();
    tracker.begin("app", "deploy", "clone");
    tracker.end("app", null, "git could not fetch: not found");
    expect(last()).toMatchObject({ status: "STOPPED", lastError: "git could not fetch: not found" });
  });

  it("reports only changes", () => {
    const { tracker, reports } = setup();
    tracker.containerStarted("app");
    tracker.probe("app", true);
    const n = reports.length;
    tracker.probe("app", true);
    tracker.probe("app", true);
    expect(reports.length).toBe(n);
  });
});
