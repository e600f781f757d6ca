// The command journal: the agent's persisted seen-set and the results of what it ran. Every
// command id is written (fsync'd) before it runs and again with its result, so a re-delivered
// command is answered from here and never run twice. Entries live until their command has
// expired (after that the expiry check refuses a replay on its own). Append-only JSON lines,
// compacted into a fresh file (atomic rename) at open, when it grows, and by time while the agent
// runs (`startMaintenance`): a long-running agent's journal holds only the last hours.
import { closeSync, fsyncSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "./state-dir";

export const JOURNAL_FILE = "journal.jsonl";
/** How long an entry outlives its command's expiry (clock skew margin). */
const RETAIN_AFTER_EXPIRY_MS = 60 * 60 * 1000;

export interface JournalEntry {
  id: string;
  /** sha256 of the signed payload bytes: the same id with other bytes is not a replay but an attack. */
  hash: string;
  action: string;
  app: string | null;
  expiresAt: string;
  state: "running" | "done";
  ok?: boolean;
  result?: Record<string, unknown>;
  error?: string;
  startedAt: string;
  finishedAt?: string;
}

export class Journal {
  private readonly entries = new Map<string, JournalEntry>();
  private fd: number;
  private lines = 0;
  private timer: NodeJS.Timeout | null = null;

  private constructor(private readonly path: string, now: number) {
    let text = "";
    try {
      text = readFileSync(path, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
    for (const line of text.split("\n")) {
      if (!line) continue;
      try {
        const e = JSON.parse(line) as JournalEntry;
        if (typeof e.id === "string" && typeof e.hash === "string") this.entries.set(e.id, e);
      } catch {
        // a torn last line from a crash mid-append: the fsync'd lines before it are intact
      }
    }
    this.prune(now);
    this.fd = this.compact();
  }

  static open(dir: string, now = Date.now()): Journal {
    return new Journal(join(dir, JOURNAL_FILE), now);
  }

  get(id: string): JournalEntry | undefined {
    return this.entries.get(id);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Records that a command is about to run; returns only once it is on disk. */
  begin(e: Omit<JournalEntry, "state" | "startedAt">): JournalEntry {
    const entry: JournalEntry = { ...e, state: "running", startedAt: new Date().toISOString() };
    this.write(entry);
    return entry;
  }

  finish(id: string, outcome: { ok: boolean; result?: Record<string, unknown>; error?: string }): JournalEntry {
    const prev = this.entries.get(id);
    if (!prev) throw new Error(`journal has no entry ${id}`);
    const entry: JournalEntry = { ...prev, ...outcome, state: "done", finishedAt: new Date().toISOString() };
    this.write(entry);
    return entry;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    closeSync(this.fd);
  }

  /** Prunes by time every `everyMs` while the agent runs (see maintain). */
  startMaintenance(everyMs = 10 * 60_000, now: () => number = Date.now): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      try {
        this.maintain(now());
      } catch {
        // a full disk: the next round tries again; appends keep working meanwhile
      }
    }, everyMs);
    this.timer.unref?.();
  }

  /**
   * Forgets finished commands past their retention and, when that removed anything or the file
   * holds far more lines than entries, rewrites the file. Returns how many entries went.
   */
  maintain(now = Date.now()): number {
    const removed = this.prune(now);
    if (removed > 0 || this.lines > 2 * this.entries.size + 100) {
      const fd = this.compact();
      closeSync(this.fd);
      this.fd = fd;
    }
    return removed;
  }

  /** How many lines the file holds now (tests, diagnostics). */
  get fileLines(): number {
    return this.lines;
  }

  /** On disk first: an entry that could not be written (ENOSPC, EIO) is not remembered either. */
  private write(entry: JournalEntry): void {
    writeSync(this.fd, JSON.stringify(entry) + "\n");
    fsyncSync(this.fd);
    this.entries.set(entry.id, entry);
    this.lines++;
    if (this.lines > 1000 && this.lines > 2 * this.entries.size) this.maintain(Date.now());
  }

  private prune(now: number): number {
    let removed = 0;
    for (const [id, e] of this.entries) {
      if (e.state === "done" && Date.parse(e.expiresAt) + RETAIN_AFTER_EXPIRY_MS < now) {
        this.entries.delete(id);
        removed++;
      }
    }
    return removed;
  }

  /** Rewrites the live entries into a fresh file and opens it for appending. */
  private compact(): number {
    const text = [...this.entries.values()].map((e) => JSON.stringify(e) + "\n").join("");
    writeFileAtomic(this.path, text);
    this.lines = this.entries.size;
    return openSync(this.path, "a", 0o600);
  }
}
