import { formatBytes } from "../contract/units";
import { PullProgress, describePull } from "./pull-progress";

const A = "aaaaaaaaaaaa";
const B = "bbbbbbbbbbbb";
const C = "cccccccccccc";

describe("PullProgress", () => {
  it("sums bytes across layers, counts download and extraction, and never goes back", () => {
    const p = new PullProgress();
    p.add({ status: "Pulling from dcc/big", id: "1" });
    for (const id of [A, B, C]) p.add({ status: "Pulling fs layer", id });
    p.add({ status: "Already exists", id: C });
    let f = p.add({ status: "Downloading", id: A, progressDetail: { current: 50, total: 100 } });
    // B's size is unknown: estimated at A's, so 50 of 2×(100+100) work units
    expect(f).toMatchObject({ bytes: { done: 50, total: 100 }, pct: 12, layers: { done: 0, total: 2 }, layer: A, action: "downloading" });
    f = p.add({ status: "Downloading", id: B, progressDetail: { current: 100, total: 300 } });
    // the total grew (B is bigger than guessed): the percent holds instead of dropping
    expect(f.bytes).toEqual({ done: 150, total: 400 });
    expect(f.pct).toBe(18); // raw 150/800 = 18.75
    p.add({ status: "Download complete", id: A });
    f = p.add({ status: "Extracting", id: A, progressDetail: { current: 100, total: 100 } });
    expect(f).toMatchObject({ bytes: { done: 200, total: 400 }, pct: 37, action: "extracting" });
    f = p.add({ status: "Pull complete", id: A });
    expect(f.layers).toEqual({ done: 1, total: 2 });
    p.add({ status: "Downloading", id: B, progressDetail: { current: 300, total: 300 } });
    f = p.add({ status: "Extracting", id: B, progressDetail: { current: 299, total: 300 } });
    expect(f.pct).toBe(99);
    f = p.add({ status: "Pull complete", id: B });
    expect(f.pct).toBe(99); // 100 only when the stream ends
    f = p.finish();
    expect(f).toMatchObject({ bytes: { done: 400, total: 400 }, pct: 100, layers: { done: 2, total: 2 } });
  });

  it("keeps the percent monotonic when a new layer's size arrives late", () => {
    const p = new PullProgress();
    const seen: number[] = [];
    for (const id of [A, B]) p.add({ status: "Pulling fs layer", id });
    seen.push(p.add({ status: "Downloading", id: A, progressDetail: { current: 90, total: 100 } }).pct);
    seen.push(p.add({ status: "Downloading", id: B, progressDetail: { current: 1, total: 10_000 } }).pct);
    seen.push(p.add({ status: "Downloading", id: B, progressDetail: { current: 9_000, total: 10_000 } }).pct);
    expect(seen).toEqual([...seen].sort((x, y) => x - y));
    expect(seen[0]).toBe(22); // 90 of 2×(100 + an estimated 100)
  });

  it("throws the error an event carries", () => {
    expect(() => new PullProgress().add({ error: "x", errorDetail: { message: "manifest unknown" } })).toThrow("manifest unknown");
  });

  it("writes one line for people", () => {
    const p = new PullProgress();
    p.add({ status: "Pulling fs layer", id: A });
    const f = p.add({ status: "Downloading", id: A, progressDetail: { current: 1_234_000_000, total: 2_600_000_000 } });
    expect(describePull("nvcr.io/nvidia/pytorch:24.05-py3", f)).toBe(`pulling nvcr.io/nvidia/pytorch:24.05-py3: 23% · 1.2 GB of 2.6 GB · layer ${A}: downloading (0/1 layers)`);
    expect(formatBytes(999)).toBe("999 B");
    expect(formatBytes(34_500_000)).toBe("35 MB");
  });
});
