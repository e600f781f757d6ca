// The live-event types, named here once: what the `apps.events` stream carries. The message's
// schema is in live-event.server.ts; this half has no imports, so the pages' live hook can use it.

/** Event types stored in app_events (they have an id and resume by Last-Event-ID). */
export const STORED_EVENT_TYPES = ["created", "updated", "deleted", "placed", "status", "action", "result", "progress", "cancelled", "host", "webhook"] as const;
/** Messages that are only passed on (id 0): usage samples, log lines, and the stream's own `resync`. */
export const TRANSIENT_EVENT_TYPES = ["usage", "log", "resync"] as const;
export const LIVE_EVENT_TYPES = [...STORED_EVENT_TYPES, ...TRANSIENT_EVENT_TYPES] as const;
export type StoredEventType = (typeof STORED_EVENT_TYPES)[number];
export type LiveEventType = (typeof LIVE_EVENT_TYPES)[number];

/** Changes after which a list of apps is out of date as a whole (reload it rather than patch it). */
export const STRUCTURAL_EVENT_TYPES: ReadonlySet<string> = new Set<LiveEventType>(["created", "deleted", "updated", "placed", "resync"]);
