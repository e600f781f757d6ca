// The pure half of useLiveApps: which fields of a change message patch a row, how patches gather
// between two frames, and how they are laid over the loader's list. Unit-tested beside it.

import { STRUCTURAL_EVENT_TYPES } from "../live-event";
import type { LiveChange } from "../live-event.server";

/** A change to an app as the live stream carries it (app/live-event.ts). */
export type LiveMessage = LiveChange;

/** Fields a change message may carry for an app row; they are patched into the row in place. */
export const IN_PLACE = ["status", "health", "phase", "lastError", "commitSha", "usage", "hostId", "hostName", "hostOnline", "gpuDevices", "statusSince", "progress"] as const;
/**
 * Changes after which the list itself is out of date (an app came or went, or changed in ways the
 * message does not carry, such as its placement's host name): the loader data is fetched again.
 * Every other message (status, progress, result, action, usage, log) only patches the fields
 * above; what else it carries (containerState, exitCode, step, pct, …) is for the timeline.
 */
export const STRUCTURAL = STRUCTURAL_EVENT_TYPES;

export type Patch = Record<string, unknown>;
/** Fields from stored events (with the newest event id that set them). */
export interface Entry {
  id: number;
  fields: Patch;
}
/** Stored patches per app, and transient ones (id 0: usage) that no reload supersedes. */
export interface Overlay {
  stored: Record<string, Entry>;
  transient: Record<string, Patch>;
}
export const EMPTY_OVERLAY: Overlay = { stored: {}, transient: {} };

/** The row fields a message sets, or null when it sets none. */
export function patchOf(c: LiveMessage): Patch | null {
  let fields: Patch | null = null;
  for (const k of IN_PLACE) if (k in c) (fields ??= {})[k] = c[k];
  // A status change starts the app's uptime (the database keeps the same time by trigger).
  if (fields && "status" in fields && typeof c.at === "string") fields.statusSince = c.at;
  return fields;
}

/** Adds one message's patch to `into` (mutated: the batch of the current frame). */
export function gather(into: Overlay, c: LiveMessage, fields: Patch): void {
  if (typeof c.id === "number" && c.id > 0) {
    const prev = into.stored[c.app];
    into.stored[c.app] = { id: Math.max(prev?.id ?? 0, c.id), fields: { ...prev?.fields, ...fields } };
  } else {
    into.transient[c.app] = { ...into.transient[c.app], ...fields };
  }
}

/** A new overlay with a frame's batch laid over the old one; untouched apps keep their entries. */
export function mergeOverlay(o: Overlay, batch: Overlay): Overlay {
  const next: Overlay = { stored: { ...o.stored }, transient: { ...o.transient } };
  for (const [name, e] of Object.entries(batch.stored)) {
    const prev = next.stored[name];
    next.stored[name] = prev ? { id: Math.max(prev.id, e.id), fields: { ...prev.fields, ...e.fields } } : e;
  }
  for (const [name, fields] of Object.entries(batch.transient)) next.transient[name] = { ...next.transient[name], ...fields };
  return next;
}

export type MergeCache<T> = Map<string, { base: T; stored: Patch | undefined; transient: Patch | undefined; merged: T }>;

/**
 * The loader's list with the overlay applied. A stored patch from an event at or before `since`
 * (the newest event the loader data reflects) is stale and ignored. An app whose inputs did not
 * change keeps its merged object (from `cache`), so memoised rows re-render only where something
 * changed. Returns the list and the cache for the next call.
 */
export function applyOverlay<T extends { name: string }>(apps: T[], o: Overlay, since: number | undefined, cache: MergeCache<T>): { list: T[]; cache: MergeCache<T> } {
  const next: MergeCache<T> = new Map();
  const list = apps.map((a) => {
    const e = o.stored[a.name];
    const stored = e && (since === undefined || e.id > since) ? e.fields : undefined;
    const transient = o.transient[a.name];
    if (!stored && !transient) return a;
    const hit = cache.get(a.name);
    const m = hit && hit.base === a && hit.stored === stored && hit.transient === transient ? hit.merged : ({ ...a, ...transient, ...stored } as T);
    next.set(a.name, { base: a, stored, transient, merged: m });
    return m;
  });
  return { list, cache: next };
}
