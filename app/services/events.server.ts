import type { Db } from "../../db/client";
import { appEvents } from "../../db/schema";
import type { AppChange, ConsoleContext } from "../context.server";
import type { StoredEventType } from "../live-event";

type Tx = Pick<Db, "insert">;

export interface EventInput {
  appId: string | null;
  appName: string;
  type: StoredEventType;
  data?: Record<string, unknown>;
}

/** Writes an app event and returns the change message to publish once the transaction commits. */
export async function recordEvent(tx: Tx, e: EventInput): Promise<AppChange> {
  const data = e.data ?? {};
  const [row] = await tx
    .insert(appEvents)
    .values({ appId: e.appId, appName: e.appName, type: e.type, data })
    .returning({ id: appEvents.id, at: appEvents.createdAt });
  return { ...data, id: row.id, type: e.type, app: e.appName, at: row.at };
}

export function publishAll(ctx: Pick<ConsoleContext, "bus">, changes: AppChange[]): void {
  for (const c of changes) ctx.bus.publish(c);
}
