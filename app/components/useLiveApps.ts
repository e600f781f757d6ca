import { useRevalidator } from "@remix-run/react";
import { useEffect, useMemo, useRef, useState } from "react";

/** Fields a change message may carry for an app row; anything else triggers a reload of the list. */
const IN_PLACE = new Set(["status", "health", "phase", "lastError", "commitSha", "usage", "hostId", "hostName", "gpuDevices"]);
const META = new Set(["id", "type", "app", "at"]);

export interface LiveChange {
  id: number;
  type: string;
  app: string;
  [field: string]: unknown;
}

/**
 * Keeps a list of apps current from the `apps.events` stream: status-like fields are patched in
 * place; structural changes (created, deleted, updated) reload the loader data. The browser's
 * EventSource resumes with Last-Event-ID after a dropped connection, so nothing is missed.
 */
export function useLiveApps<T extends { name: string }>(apps: T[], opts: { app?: string; onChange?: (c: LiveChange) => void } = {}) {
  const [overlay, setOverlay] = useState<Record<string, Record<string, unknown>>>({});
  const [connected, setConnected] = useState(false);
  const revalidator = useRevalidator();
  const revalidate = useRef(revalidator.revalidate);
  revalidate.current = revalidator.revalidate;
  const onChange = useRef(opts.onChange);
  onChange.current = opts.onChange;

  useEffect(() => {
    const input = opts.app ? `?input=${encodeURIComponent(JSON.stringify({ app: opts.app }))}` : "";
    const es = new EventSource(`/api/trpc/apps.events${input}`);
    let pending: Record<string, Record<string, unknown>> = {};
    let frame = 0;
    const flush = () => {
      frame = 0;
      const batch = pending;
      pending = {};
      setOverlay((o) => {
        const next = { ...o };
        for (const [name, fields] of Object.entries(batch)) next[name] = { ...next[name], ...fields };
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
      onChange.current?.(c);
      const fields: Record<string, unknown> = {};
      let structural = false;
      for (const [k, v] of Object.entries(c)) {
        if (META.has(k)) continue;
        if (IN_PLACE.has(k)) fields[k] = v;
        else structural = true;
      }
      if (c.type === "created" || c.type === "deleted" || c.type === "updated") structural = true;
      if (Object.keys(fields).length) {
        pending[c.app] = { ...pending[c.app], ...fields };
        // Several changes within one frame become one render; a lone change is shown at once.
        frame ||= requestAnimationFrame(flush);
      }
      if (structural) revalidate.current();
    };
    es.onerror = () => setConnected(false);
    return () => {
      if (frame) cancelAnimationFrame(frame);
      es.close();
    };
  }, [opts.app]);

  const merged = useMemo(() => apps.map((a) => (overlay[a.name] ? ({ ...a, ...overlay[a.name] } as T) : a)), [apps, overlay]);
  return { apps: merged, connected };
}
