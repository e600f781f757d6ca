import { describe, expect, it } from "vitest";
import { Backoff } from "./backoff";

describe("Backoff", () => {
  it("doubles the window up to the cap and draws uniformly inside it (full jitter)", () => {
    const top = new Backoff({ baseMs: 500, capMs: 30_000, random: () => 0.999999 });
    const windows = Array.from({ length: 10 }, () => top.next());
    expect(windows.slice(0, 7)).toEqual([499, 999, 1999, 3999, 7999, 15999, 29999]);
    expect(Math.max(...windows)).toBeLessThan(30_000);
    const bottom = new Backoff({ baseMs: 500, capMs: 30_000, random: () => 0 });
    expect(bottom.next()).toBe(0);
  });

  it("starts over after reset", () => {
    const b = new Backoff({ baseMs: 100, capMs: 10_000, random: () => 0.5 });
    b.next();
    b.next();
    b.next();
    b.reset();
    expect(b.next()).toBe(50);
  });
});
