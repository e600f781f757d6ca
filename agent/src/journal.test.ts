import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { JOURNAL_FILE, Journal } from "./journal";

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "dcc-journal-"))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const entry = (id: string, expiresAt = new Date(Date.now() + 60_000).toISOString()) => ({ id, hash: "h" + id, action: "ping", app: null, expiresAt });

describe("Journal", () => {
  it("keeps what was begun and finished across a reopen, in a 0600 file", () => {
    const j = Journal.open(dir);
    j.begin(entry("a"));
    j.finish("a", { ok: true, result: { x: 1 } });
    j.begin(entry("b"));
    j.close();
    const again = Journal.open(dir);
    expect(again.get("a")).toMatchObject({ state: "done", ok: true, result: { x: 1 } });
    expect(again.get("b")).toMatchObject({ state: "running" });
    expect(statSync(join(dir, JOURNAL_FILE)).mode & 0o777).toBe(0o600);
    again.close();
  });

  it("survives a torn last line from a crash mid-append", () => {
    const j = Journal.open(dir);
    j.begin(entry("a"));
    j.close();
    appendFileSync(join(dir, JOURNAL_FILE), '{"id":"b","ha');
    const again = Journal.open(dir);
    expect(again.get("a")).toBeDefined();
    expect(again.get("b")).toBeUndefined();
    again.close();
  });

  it("forgets finished commands an hour after they expired, and compacts the file", () => {
    const j = Journal.open(dir);
    j.begin(entry("old", new Date(Date.now() - 2 * 3600_000).toISOString()));
    j.finish("old", { ok: true });
    j.begin(entry("new"));
    j.finish("new", { ok: true });
    j.close();
    const again = Journal.open(dir);
    expect(again.get("old")).toBeUndefined();
    expect(again.get("new")).toBeDefined();
    expect(readFileSync(join(dir, JOURNAL_FILE), "utf8").trim().split("\n")).toHaveLength(1);
    again.close();
  });

  it("prunes by time while it runs: finished commands go once their retention passes, and the file is rewritten", () => {
    const j = Journal.open(dir);
    const t0 = Date.now();
    j.begin(entry("soon", new Date(t0 + 60_000).toISOString()));
    j.finish("soon", { ok: true });
    j.begin(entry("later", new Date(t0 + 5 * 3600_000).toISOString()));
    j.finish("later", { ok: true });
    j.begin(entry("running", new Date(t0 - 3 * 3600_000).toISOString()));
    expect(readFileSync(join(dir, JOURNAL_FILE), "utf8").trim().split("\n")).toHaveLength(5);

    // within the hour after expiry: kept
    expect(j.maintain(t0 + 30 * 60_000)).toBe(0);
    expect(j.get("soon")).toBeDefined();
    // past it: gone from memory and from the file; a command still running is never dropped
    expect(j.maintain(t0 + 2 * 3600_000)).toBe(1);
    expect(j.get("soon")).toBeUndefined();
    expect(j.get("later")).toBeDefined();
    expect(j.get("running")).toBeDefined();
    const lines = readFileSync(join(dir, JOURNAL_FILE), "utf8").trim().split("\n").map((l) => JSON.parse(l).id);
    expect(lines.sort()).toEqual(["later", "running"]);
    // appends after the rewrite land in the new file
    j.finish("running", { ok: false, error: "x" });
    j.close();
    expect(Journal.open(dir, t0 - 3 * 3600_000).get("running")).toMatchObject({ state: "done", ok: false });
  });

  it("runs the prune on a timer once maintenance is started", () => {
    vi.useFakeTimers();
    try {
      const j = Journal.open(dir);
      j.begin(entry("old", new Date(Date.now() + 1000).toISOString()));
      j.finish("old", { ok: true });
      let clock = Date.now();
      j.startMaintenance(60_000, () => clock);
      vi.advanceTimersByTime(60_000);
      expect(j.get("old")).toBeDefined();
      clock += 2 * 3600_000;
      vi.advanceTimersByTime(60_000);
      expect(j.get("old")).toBeUndefined();
      expect(readFileSync(join(dir, JOURNAL_FILE), "utf8")).toBe("");
      j.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it("does not remember an entry it could not write", () => {
    const j = Journal.open(dir);
    j.close(); // the descriptor is gone: the next write fails like a dead disk would
    expect(() => j.begin(entry("lost"))).toThrow();
    expect(j.get("lost")).toBeUndefined();
  });
});
