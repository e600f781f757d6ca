import { useRevalidator } from "@remix-run/react";
import { useEffect, useMemo, useRef, useState } from "react";
import { applyOverlay, EMPTY_OVERLAY, gather, mergeOverlay, patchOf, STRUCTURAL, type LiveMessage, type MergeCache, type Overlay } from "./live-merge";

export type { LiveMessage as LiveChange } from "./live-merge";

/**
 * Keeps a list of apps current from the `apps.events` stream: status-like fields are patched in
 * place; structural changes (created, deleted, updated, placed) reload the loader data. The
 * browser's EventSource resumes with Last-Event-ID after a dropped connection, so nothing is
 * missed. `since` is the newest event id the loader data already reflects: a patch from an event
 * at or before it is superseded by the loader's own values (so a reload after `updated` or a
 * re-created name never shows a stale status). The merge itself is in ./live-merge.
 */
export function useLiveApps<T extends { name: string }>(apps: T[], opts: { app?: string; since?: number; onChange?: (c: LiveMessage) => void } = {}) {
  const [overlay, setOverlay] = useState<Overlay>(EMPTY_OVERLAY);
  const [connected, setConnected] = useState(false);
  const revalidator = useRevalidator();
  const revalidate = useRef(revalidator.revalidate);
  revalidate.current = revalidator.revalidate;
  const onChange = useRef(opts.onChange);
  onChange.current = opts.onChange;

  useEffect(() => {
    const input = opts.app ? `?input=${encodeURIComponent(JSON.stringify({ app: opts.app }))}` : "";
    const es = new EventSource(`/api/trpc/apps.events${input}`);
    let batch: Overlay = { stored: {}, transient: {} };
    let frame = 0;
    const flush = () => {
      frame = 0;
      const b = batch;
      batch = { stored: {}, transient: {} };
      setOverlay((o) => mergeOverlay(o, b));
    };
    es.addEventListener("connected", () => setConnected(true));
    es.onmessage = (ev) => {
      let c: LiveMessage;
      try {
        c = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (typeof c !== "object" || c === null || typeof c.app !== "string") return;
      onChange.current?.(c);
      const fields = patchOf(c);
      if (fields) {
        gather(batch, c, fields);
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

  const since = opts.since;
  const cache = useRef<MergeCache<T>>(new Map());
  const merged = useMemo(() => {
    const r = applyOverlay(apps, overlay, since, cache.current);
    cache.current = r.cache;
    return r.list;
  }, [apps, overlay, since]);
  return { apps: merged, connected };
}
