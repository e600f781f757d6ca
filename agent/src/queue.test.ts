import { describe, expect, it } from "vitest";
import { AppQueue } from "./queue";

const tick = () => new Promise((r) => setTimeout(r, 5));

describe("AppQueue", () => {
  it("runs an app's tasks one at a time in order; other apps do not wait", async () => {
    const q = new AppQueue();
    const log: string[] = [];
    let releaseA!: () => void;
    const a1 = q.run("a", "1", () => new Promise<void>((r) => (releaseA = r)).then(() => void log.push("a1")));
    const a2 = q.run("a", "2", async () => void log.push("a2"));
    const b1 = q.run("b", "3", async () => void log.push("b1"));
    await b1;
    expect(log).toEqual(["b1"]);
    expect(q.state("1")).toBe("running");
    expect(q.state("2")).toBe("queued");
    releaseA();
    await Promise.all([a1, a2]);
    expect(log).toEqual(["b1", "a1", "a2"]);
    expect(q.state("1")).toBeUndefined();
  });

  it("a waiting task whose signal aborts is dropped without running; exclusive shares the same lane", async () => {
    const q = new AppQueue();
    let release!: () => void;
    const first = q.exclusive("a", () => new Promise<string>((r) => (release = () => r("cleanup done"))));
    const abort = new AbortController();
    let ran = false;
    const dropped = q.run("a", "x", async () => void (ran = true), abort.signal).catch((e: Error) => e.message);
    abort.abort(new Error("cancelled before it ran"));
    expect(await dropped).toBe("cancelled before it ran");
    release();
    expect(await first).toBe("cleanup done");
    await tick();
    expect(ran).toBe(false);
  });

  it("a running task that does not unwind after its abort frees the lane after the grace period", async () => {
    const q = new AppQueue(50);
    const abort = new AbortController();
    const stuck = q.run("a", "s", () => new Promise(() => {}), abort.signal).catch((e: Error) => e.message);
    const next = q.run("a", "n", async () => "next ran");
    abort.abort(new Error("deadline passed"));
    expect(await stuck).toBe("deadline passed");
    expect(await next).toBe("next ran");
  });
});
