import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
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
});
