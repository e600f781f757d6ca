// Notification events into the durable delivery queue. `notifyEvent` is the one entry point the
// rest of the console calls (status handling, command results, host presence, the dependency
// check): it writes one delivery row per target subscribed to the event, deduplicated per target by
// the event's key, and never throws into its caller. Delivery itself is ./notify-delivery.server.ts.
import { randomBytes } from "node:crypto";
import { and, eq, inArray } from "drizzle-orm";
import type { Db } from "../../db/client";
import { commands, hosts, notificationDeliveries, notificationTargets, type NotificationEvent } from "../../db/schema";
import type { Config } from "../config.server";

export type NotifyKind = NotificationEvent | "test";

export interface NotifyInput {
  kind: NotifyKind;
  app?: string;
  host?: string;
  /** What happened, in a few fields (exit code, error, vulnerability …); no secrets. */
  detail?: Record<string, unknown>;
  /** Same key, same target: delivered once. Defaults to the kind, app, host and detail.at. */
  key?: string;
  /** Only this target (the admin's "send test"). */
  targetId?: string;
}

/** What a JSON webhook receives (the body that is signed), and what a Slack message is made from. */
export interface NotificationPayload {
  id: string;
  event: NotifyKind;
  at: string;
  app: string | null;
  host: string | null;
  text: string;
  detail: Record<string, unknown>;
}

const UNFINISHED = ["pending", "delivered"] as const;

export const newDeliveryId = () => `dlv_${randomBytes(10).toString("hex")}`;

function describe(ev: NotifyInput): string {
  const d = ev.detail ?? {};
  const app = ev.app ?? "?";
  switch (ev.kind) {
    case "app.stopped": {
      const code = typeof d.exitCode === "number" ? ` (exit code ${d.exitCode}${d.exitCode === 137 ? ", killed or out of memory" : ""})` : "";
      return `App ${app} stopped without anyone asking${code}${d.lastError ? `: ${String(d.lastError).slice(0, 300)}` : ""}`;
    }
    case "deploy.failed":
      return `Deploy of ${app} failed (${String(d.action ?? "deploy")}): ${String(d.error ?? "unknown error").slice(0, 500)}`;
    case "host.offline":
      return `Host ${String(d.hostName ?? ev.host ?? "?")} is offline (its agent has not been connected for more than ${String(d.afterSeconds ?? 60)} s)`;
    case "vulnerability": {
      const aliases = Array.isArray(d.aliases) && d.aliases.length ? ` (${d.aliases.join(", ")})` : "";
      return `${String(d.severity ?? "").toUpperCase()} vulnerability ${String(d.id)}${aliases} in ${String(d.package)} ${String(d.version)} used by ${app}; ${d.fixedIn ? `fixed in ${String(d.fixedIn)}` : "no fixed version yet"}`;
    }
    case "test":
      return "Test notification from Docker Control Center";
  }
}

/**
 * Queues the event for every target subscribed to it; answers how many deliveries were queued.
 * An app that stopped while a command that takes it down is in flight was asked to (stop,
 * deinstall, restart, a redeploy): no event. A provision or start still being answered does not
 * hide a crash or a kill right after the app came up. Failures are logged, never thrown: a notification must not fail a report.
 */
/** Commands that take the container down on purpose while they run. */
const STOPS_ON_PURPOSE = ["stop", "deinstall", "restart", "reinstall", "update"] as const;

export async function notifyEvent(ctx: { db: Db; config?: Config }, input: NotifyInput): Promise<number> {
  const ev = { ...input, detail: { ...input.detail } };
  try {
    if (ev.kind === "deploy.failed" && !ev.app && typeof ev.detail.commandId === "string") {
      const [c] = await ctx.db.select({ app: commands.appName }).from(commands).where(eq(commands.id, ev.detail.commandId));
      ev.app = c?.app ?? undefined;
    }
    if (ev.kind === "host.offline" && ev.host) {
      const [h] = await ctx.db.select({ name: hosts.name }).from(hosts).where(eq(hosts.id, ev.host));
      ev.detail.hostName = h?.name ?? ev.host;
      ev.detail.afterSeconds = Math.round((ctx.config?.alerts.hostOfflineMs ?? 60_000) / 1000);
    }
    if (ev.kind === "app.stopped" && ev.app) {
      const busy = await ctx.db
        .select({ id: commands.id })
        .from(commands)
        .where(and(eq(commands.appName, ev.app), inArray(commands.state, [...UNFINISHED]), inArray(commands.action, [...STOPS_ON_PURPOSE])))
        .limit(1);
      if (busy.length) return 0;
    }
    const targets = await ctx.db
      .select({ id: notificationTargets.id, events: notificationTargets.events })
      .from(notificationTargets)
      .where(ev.targetId ? eq(notificationTargets.id, ev.targetId) : undefined);
    const chosen = targets.filter((t) => ev.targetId || (ev.kind !== "test" && t.events.includes(ev.kind)));
    if (!chosen.length) return 0;
    const at = new Date().toISOString();
    const key = (ev.key ?? `${ev.kind}:${ev.app ?? ""}:${ev.host ?? ""}:${String(ev.detail?.at ?? "")}`).slice(0, 500);
    const rows = chosen.map((t) => {
      const id = newDeliveryId();
      const payload: NotificationPayload = { id, event: ev.kind, at, app: ev.app ?? null, host: ev.host ?? null, text: describe(ev), detail: ev.detail ?? {} };
      return { id, targetId: t.id, event: ev.kind, dedupKey: key, payload: payload as unknown as Record<string, unknown>, nextAttemptAt: at, createdAt: at };
    });
    const done = await ctx.db.insert(notificationDeliveries).values(rows).onConflictDoNothing().returning({ id: notificationDeliveries.id });
    return done.length;
  } catch (e) {
    console.log(JSON.stringify({ t: new Date().toISOString(), level: "error", msg: "notification not queued", kind: input.kind, app: input.app, error: (e as Error).message }));
    return 0;
  }
}
