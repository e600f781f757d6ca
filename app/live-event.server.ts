// The live-event message: what the event writers produce, the stream sends and the pages' live
// hook reads (as a type). Stored events are checked against it when read back.
import { z } from "zod";
import { LIVE_EVENT_TYPES } from "./live-event";

/**
 * `{ id, type, app, at?, ...changed fields }`: id > 0 for stored events (their order), 0 for
 * transient ones; the other fields are the ones that changed (status, health, phase, …) and what
 * the timeline shows (step, pct, exitCode, …).
 */
export const LiveChangeSchema = z.looseObject({
  id: z.number().int().nonnegative(),
  type: z.enum(LIVE_EVENT_TYPES),
  app: z.string(),
  at: z.string().optional(),
});
export type LiveChange = z.infer<typeof LiveChangeSchema>;

