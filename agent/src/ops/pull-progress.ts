// Docker's pull stream (the JSON events dockerode's followProgress hands over, one per layer
// update) folded into one progress figure for the whole image: bytes done and total across layers,
// a percent, and the layer being worked on. Pure; the steps module throttles what it reports.
//
// A layer counts twice: downloading, then extracting (on a 10 GB image both take minutes), so the
// percent is (downloaded + extracted) / (2 × total). Docker names every layer at once ("Pulling fs
// layer") but tells a layer's size only once its download starts, so the total grows: a layer of
// unknown size is estimated at the mean of the known ones, and the percent reported never goes back.
import { formatBytes } from "../contract/units";

export interface PullEvent {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string };
}

export interface PullFigure {
  /** Compressed bytes downloaded, and the sum of the sizes known so far (layers already present excluded). */
  bytes: { done: number; total: number };
  /** 0–100, never lower than the previous figure. */
  pct: number;
  /** Layers to fetch, and how many are complete. */
  layers: { done: number; total: number };
  /** The layer the newest event was about, and what happened to it ("downloading", "extracting", …). */
  layer: string | null;
  action: string | null;
}

interface Layer {
  size: number | null;
  downloaded: number;
  extracted: number;
  complete: boolean;
}

export class PullProgress {
  private readonly layers = new Map<string, Layer>();
  private last = 0;
  private layer: string | null = null;
  private action: string | null = null;

  /** Feeds one event; answers the figure after it. An error event throws its message. */
  add(e: PullEvent): PullFigure {
    if (e.error) throw new Error(e.errorDetail?.message ?? e.error);
    const id = e.id;
    const status = (e.status ?? "").toLowerCase();
    if (id && /^[0-9a-f]{12,64}$/.test(id)) {
      const l = this.layers.get(id) ?? { size: null, downloaded: 0, extracted: 0, complete: false };
      const total = e.progressDetail?.total;
      const current = e.progressDetail?.current;
      if (status === "already exists") {
        this.layers.delete(id); // nothing to fetch: not part of the figure
        return this.figure();
      }
      if (status === "downloading") {
        if (typeof total === "number" && total > 0) l.size = total;
        if (typeof current === "number") l.downloaded = Math.max(l.downloaded, current);
      } else if (status === "download complete" || status === "verifying checksum") {
        if (l.size !== null) l.downloaded = l.size;
      } else if (status === "extracting") {
        if (typeof total === "number" && total > 0) l.size ??= total;
        if (l.size !== null) l.downloaded = l.size;
        if (typeof current === "number") l.extracted = Math.max(l.extracted, current);
      } else if (status === "pull complete") {
        l.complete = true;
        if (l.size !== null) l.downloaded = l.extracted = l.size;
      }
      this.layers.set(id, l);
      if (status !== "waiting" && status !== "pulling fs layer") {
        this.layer = id.slice(0, 12);
        this.action = status || null;
      }
    }
    return this.figure();
  }

  /** The figure once the stream ended without an error: everything done. */
  finish(): PullFigure {
    for (const l of this.layers.values()) {
      l.complete = true;
      if (l.size !== null) l.downloaded = l.extracted = l.size;
    }
    this.last = 100;
    this.layer = null;
    this.action = "complete";
    return this.figure();
  }

  figure(): PullFigure {
    const all = [...this.layers.values()];
    const known = all.filter((l) => l.size !== null);
    const mean = known.length ? known.reduce((s, l) => s + l.size!, 0) / known.length : 0;
    let total = 0;
    let estimated = 0;
    let done = 0;
    let work = 0;
    for (const l of all) {
      const size = l.size ?? (l.complete ? 0 : mean);
      estimated += size;
      if (l.size !== null) total += l.size;
      done += l.complete && l.size !== null ? l.size : Math.min(l.downloaded, size);
      work += l.complete ? 2 * size : Math.min(l.downloaded, size) + Math.min(l.extracted, size);
    }
    const raw = estimated > 0 ? Math.floor((100 * work) / (2 * estimated)) : 0;
    // Below 100 until the stream itself says it is done.
    this.last = Math.max(this.last, Math.min(raw, this.last === 100 ? 100 : 99));
    return {
      bytes: { done: Math.round(done), total: Math.round(total) },
      pct: this.last,
      layers: { done: all.filter((l) => l.complete).length, total: all.length },
      layer: this.layer,
      action: this.action,
    };
  }
}


/** One line for people: "pulling nvcr.io/…: 45% · 1.2 GB of 2.6 GB · layer 3f4e…: downloading (2/7 layers)". */
export function describePull(image: string, f: PullFigure): string {
  const size = f.bytes.total > 0 ? ` · ${formatBytes(f.bytes.done)} of ${formatBytes(f.bytes.total)}` : "";
  const layer = f.layer ? ` · layer ${f.layer}: ${f.action}` : "";
  return `pulling ${image}: ${f.pct}%${size}${layer} (${f.layers.done}/${f.layers.total} layers)`;
}
