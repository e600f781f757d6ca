import type { Db } from "../../db/client";
import { auditLog } from "../../db/schema";
import type { Actor } from "../context.server";

type Tx = Pick<Db, "insert">;

export interface AuditInput {
  action: string;
  target?: string | null;
  outcome?: "ok" | "denied" | "error";
  detail?: Record<string, unknown>;
}

/** Appends one audit row; called inside the same transaction as the change it records. */
export async function recordAudit(tx: Tx, actor: Actor, entry: AuditInput): Promise<void> {
  await tx.insert(auditLog).values({
    actor: `${actor.kind}:${actor.id}`,
    action: entry.action,
    target: entry.target ?? null,
    sourceAddress: actor.address ?? null,
    outcome: entry.outcome ?? "ok",
    detail: entry.detail ?? null,
  });
}
