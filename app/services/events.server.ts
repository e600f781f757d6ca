import type { Db } from "../../db/client";
import { placeholders, prepared } from "../../db/prepared";
import { appEvents } from "../../db/schema";
import type { AppChange, ConsoleContext } from "../context.server";
import type { StoredEventType } from "../live-event";

export interface EventInput {
  appId: string | null;
  appName: string;
  type: StoredEventType;
  data?: Record<string, unknown>;
}

type Tx = Pick<Db, "insert">;

const insertEvent = prepared((db: Tx) =>
  db
    .insert(appEvents)
    .values(placeholders(["appId", "appName", "type", "data"]))
    .returning({ id: appEvents.id, at: appEvents.createdAt }),
);

/** Writes an app event and returns the change message to publish once the transaction commits. */
export async function recordEvent(tx: Tx, e: EventInput): Promise<AppChange> {
  const data = e.data ?? {};
  const [row] = await insertEvent(tx).all({ appId: e.appId, appName: e.appName, type: e.type, data });
  return { ...data, id: row.id, type: e.type, app: e.appName, at: row.at };
}

export function publishAll(ctx: Pick<ConsoleContext, "bus">, changes: AppChange[]): void {
  for (const c of changes) ctx.bus.publish(c);
}
