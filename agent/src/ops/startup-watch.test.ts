import { describe, expect, it, vi } from "vitest";
import type { StatusReport } from "../contract/reports";
import { StatusTracker } from "./status";
import { StartupWatch } from "./startup-watch";

function setup(stallSeconds = 5) {
  let now = 1_000_000;
  let feed!: (stream: "stdout" | "stderr", data: Buffer) => void;
  const progress: { app: string; percent: number | null; label: string }[] = [];
  const stalls: (string | null)[] = [];
  const w = new StartupWatch({
    attach: async (_app, onData) => {
      feed = onData;
    },
    stallSeconds: () => stallSeconds,
    onProgress: (app, p) => progress.push({ app, percent: p.percent, label: p.label }),
    onStall: (_app, reason) => stalls.push(reason),
    now: () => now,
    tickMs: 60_000,
  });
  return { w, progress, stalls, feed: (s: string, stream: "stdout" | "stderr" = "stderr") => feed(stream, Buffer.from(s)), advance: (ms: number) => (now += ms) };
}

describe("startup watch", () => {
  it("reports tqdm progress at most every 500 ms, the newest figure last", async () => {
    vi.useFakeTimers();
    try {
      const t = setup();
      t.w.start("sd");
      await Promise.resolve();
      t.feed("sd_xl.safetensors:  10%|#         | 1/10\r");
      t.advance(100);
      t.feed("sd_xl.safetensors:  20%|##        | 2/10\r");
      t.feed("sd_xl.safetensors:  42%|####      | 4/10\r");
      expect(t.progress.map((p) => p.percent)).toEqual([10]);
      t.advance(400);
      vi.advanceTimersByTime(500);
      expect(t.progress.map((p) => p.percent)).toEqual([10, 42]);
      t.advance(600);
      t.feed("sd_xl.safetensors:  77%|#######   | 7/10\r");
      expect(t.progress.map((p) => p.percent)).toEqual([10, 42, 77]);
      expect(t.progress[2]!.label).toBe("downloading sd_xl.safetensors");
      t.w.stop("sd");
    } finally {
      vi.useRealTimers();
    }
  });

  it("says stalled after the limit without output, and clears it when output comes", async () => {
    const t = setup(5);
    t.w.start("quiet");
    await Promise.resolve();
    t.advance(4_999);
    t.w.checkStalls();
    expect(t.stalls).toEqual([]);
    t.advance(1);
    t.w.checkStalls();
    t.w.checkStalls();
    expect(t.stalls).toEqual(["stalled: no output and no answer on its port for 5 s"]);
    t.feed("still loading\n", "stdout");
    expect(t.stalls).toEqual(["stalled: no output and no answer on its port for 5 s", null]);
    t.w.close();
    expect(t.w.watching("quiet")).toBe(false);
  });
});

describe("status tracker: progress and stall", () => {
  function tracker() {
    const reports: StatusReport[] = [];
    const t = new StatusTracker((r) => reports.push(r), () => 0);
    t.track("sd");
    t.begin("sd", "deploy", "start");
    t.containerStarted("sd", 0);
    t.end("sd", { state: "running", startedAt: 0 });
    return { t, reports };
  }

  it("carries progress while STARTING and drops it once RUNNING", () => {
    const { t, reports } = tracker();
    t.startupProgress("sd", { label: "downloading x", percent: 42, updatedAt: "t" });
    expect(reports.at(-1)).toMatchObject({ status: "STARTING", progress: { percent: 42 } });
    t.probe("sd", true);
    expect(reports.at(-1)!.status).toBe("RUNNING");
    expect(reports.at(-1)!.progress).toBeUndefined();
    t.startupProgress("sd", { label: "late", percent: 1, updatedAt: "t" });
    expect(reports.at(-1)!.progress).toBeUndefined();
  });

  it("shows a stall as phase stalled (amber: still STARTING), red only when the container dies", () => {
    const { t, reports } = tracker();
    t.stalled("sd", "stalled: no output and no answer on its port for 5 s");
    expect(reports.at(-1)).toMatchObject({ status: "STARTING", phase: "stalled", lastError: "stalled: no output and no answer on its port for 5 s" });
    t.stalled("sd", null);
    expect(reports.at(-1)).toMatchObject({ status: "STARTING", phase: null, lastError: null });
    t.stalled("sd", "stalled: again");
    t.containerDied("sd", { exitCode: 1 });
    expect(reports.at(-1)).toMatchObject({ status: "STOPPED", phase: null });
    expect(reports.at(-1)!.lastError).toMatch(/exited with code 1/);
  });
});
