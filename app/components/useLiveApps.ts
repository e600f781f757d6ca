import { useRevalidator } from "@remix-run/react";
import { useEffect, useMemo, useRef, useState } from "react";

/** Fields a change message may carry for an app row; they are patched into the row in place. */
const IN_PLACE = ["status", "health", "phase", "lastError", "commitSha", "usage", "hostId", "hostName", "hostOnline", "gpuDevices", "statusSince"] as const;
/**
 * Changes after which the list itself is out of date (an app came or went, or changed in ways the
 * message does not carry, such as its placement's host name): the loader data is fetched again.
 * Every other message (status, progress, result, action, usage, log) only patches the fields
 * above; what else it carries (containerState, exitCode, step, pct, …) is for the timeline.
 */
const STRUCTURAL = new Set(["created", "deleted", "updated", "placed", "resync"]);

export interface LiveChange {
  id: number;
  type: string;
  app: string;
  [field: string]: unknown;
}

type Patch = Record<string, unknown>;
/** Fields from stored events (with the newest event id that set them), and from transient ones (id 0: usage). */
interface Entry {
  id: number;
  fields: Patch;
}

/**
 * Keeps a list of apps current from the `apps.events` stream: status-like fields are patched in
 * place; structural changes (created, deleted, updated, placed) reload the loader data. The
 * browser's EventSource resumes with Last-Event-ID after a dropped connection, so nothing is
 * missed. `since` is the newest event id the loader data already reflects: a patch from an event
 * at or before it is superseded by the loader's own values (so a reload after `updated` or a
 * re-created name never shows a stale status). An app whose fields did not change keeps its
 * object identity, so memoised rows of a long list re-render only where something changed.
 */
export function useLiveApps<T extends { name: string }>(apps: T[], opts: { app?: string; since?: number; onChange?: (c: LiveChange) => void } = {}) {
  const [overlay, setOverlay] = useState<{ stored: Record<string, Entry>; transient: Record<string, Patch> }>({ stored: {}, transient: {} });
  const [connected, setConnected] = useState(false);
  const revalidator = useRevalidator();
  const revalidate = useRef(revalidator.revalidate);
  revalidate.current = revalidator.revalidate;
  const onChange = useRef(opts.onChange);
  onChange.current = opts.onChange;

  useEffect(() => {
    const input = opts.app ? `?input=${encodeURIComponent(JSON.stringify({ app: opts.app }))}` : "";
    const es = new EventSource(`/api/trpc/apps.events${input}`);
    let stored: Record<string, Entry> = {};
    let transient: Record<string, Patch> = {};
    let frame = 0;
    const flush = () => {
      frame = 0;
      const [s, t] = [stored, transient];
      stored = {};
      transient = {};
      setOverlay((o) => {
        const next = { stored: { ...o.stored }, transient: { ...o.transient } };
        for (const [name, e] of Object.entries(s)) {
          const prev = next.stored[name];
          next.stored[name] = prev ? { id: Math.max(prev.id, e.id), fields: { ...prev.fields, ...e.fields } } : e;
        }
        for (const [name, fields] of Object.entries(t)) next.transient[name] = { ...next.transient[name], ...fields };
        return next;
      });
    };
    es.addEventListener("connected", () => setConnected(true));
    es.onmessage = (ev) => {
      let c: LiveChange;
      try {
        c = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (typeof c !== "object" || c === null || typeof c.app !== "string") return;
      onChange.current?.(c);
      let fields: Patch | null = null;
      for (const k of IN_PLACE) if (k in c) (fields ??= {})[k] = c[k];
      // A status change starts the app's uptime (the database keeps the same time by trigger).
      if (fields && "status" in fields && typeof c.at === "string") fields.statusSince = c.at;
      if (fields) {
        if (typeof c.id === "number" && c.id > 0) {
          const prev = stored[c.app];
          stored[c.app] = { id: Math.max(prev?.id ?? 0, c.id), fields: { ...prev?.fields, ...fields } };
        } else {
          transient[c.app] = { ...transient[c.app], ...fields };
        }
        // Several changes within one frame become one render; a lone change is shown at the next frame.
        frame ||= requestAnimationFrame(flush);
      }
      if (STRUCTURAL.has(c.type)) revalidate.current();
    };
    es.onerror = () => setConnected(false);
    return () => {
      if (frame) cancelAnimationFrame(frame);
      es.close();
    };
  }, [opts.app]);

  // Merged rows are cached per app: same loader object and same patches → the same merged object.
  const since = opts.since;
  const cache = useRef(new Map<string, { base: T; stored: Patch | undefined; transient: Patch | undefined; merged: T }>());
  const merged = useMemo(() => {
    const next = new Map<string, { base: T; stored: Patch | undefined; transient: Patch | undefined; merged: T }>();
    const out = apps.map((a) => {
      const e = overlay.stored[a.name];
      const stored = e && (since === undefined || e.id > since) ? e.fields : undefined;
      const transient = overlay.transient[a.name];
      if (!stored && !transient) return a;
      const hit = cache.current.get(a.name);
      const m = hit && hit.base === a && hit.stored === stored && hit.transient === transient ? hit.merged : ({ ...a, ...transient, ...stored } as T);
      next.set(a.name, { base: a, stored, transient, merged: m });
      return m;
    });
    cache.current = next;
    return out;
  }, [apps, overlay, since]);
  return { apps: merged, connected };
}
