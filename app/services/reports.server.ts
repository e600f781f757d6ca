// What the console does with what an agent reports of its own accord: status reports, inventory,
// usage and log lines (answers to commands are command-answers.server.ts). An agent is trusted only as its own host: every write about an app
// is guarded by `apps.host_id = <the reporting host>`, and a report about another host's app is
// refused (returned to the hub, which logs it) with nothing written. How an answer or report turns
// into the app's status is app-status.server.ts's rule; host presence is host-presence.server.ts.
import { and, eq, inArray } from "drizzle-orm";
import type { InventoryItem, LogLine, StatusReport, UsageSample } from "../../agent/src/contract/reports";
import { APP_ACTIONS } from "../../agent/src/contract/spec";
import { apps, commands, type App } from "../../db/schema";
import type { AppChange, ConsoleContext } from "../context.server";
import { observedState, writeAppState } from "./app-status.server";
import { publishAll } from "./events.server";
import { notifyEvent } from "./notify.server";
import { UNFINISHED } from "./outbox.server";

type Ctx = Pick<ConsoleContext, "db" | "bus">;

export interface Refusal {
  app: string;
  reason: string;
}


const nowIso = () => new Date().toISOString();


async function ownedApps(ctx: Ctx, names: string[]): Promise<Map<string, App>> {
  const rows = names.length ? await ctx.db.select().from(apps).where(inArray(apps.name, names)) : [];
  return new Map(rows.map((a) => [a.name, a]));
}

function ownership(app: App | undefined, hostId: string, name: string): string | null {
  if (!app) return `no app named ${name}`;
  if (app.hostId !== hostId) return `app ${name} belongs to ${app.hostId ? `host ${app.hostId}` : "no host"}, not to the reporting host`;
  return null;
}

/** Applies the agent's observations to the host's own apps; writes an event per app that changed. */
export async function applyStatusReports(ctx: Ctx, hostId: string, reports: StatusReport[]): Promise<Refusal[]> {
  const refused: Refusal[] = [];
  const byName = await ownedApps(ctx, [...new Set(reports.map((r) => r.app))]);
  const writes: { app: App; report: StatusReport }[] = [];
  for (const r of reports) {
    const app = byName.get(r.app);
    const why = ownership(app, hostId, r.app);
    if (why || !app) refused.push({ app: r.app, reason: why ?? "unknown app" });
    else writes.push({ app, report: r });
  }
  if (!writes.length) return refused;
  const changes: AppChange[] = [];
  const stopped: { app: App; report: StatusReport }[] = [];
  await ctx.db.transaction(async (tx) => {
    for (const { app, report: r } of writes) {
      if (r.status === "STOPPED" && app.status !== "STOPPED") stopped.push({ app, report: r });
      const extra: Record<string, unknown> = { reportedAt: r.at };
      if (r.containerState !== undefined) extra.containerState = r.containerState;
      if (r.exitCode !== undefined) extra.exitCode = r.exitCode;
      const patch = observedState(r);
      // A report only about the same state again changes nothing visible: no event for it.
      const visible = Object.keys(patch).some((k) =>
        k === "progress" ? JSON.stringify(app.progress ?? null) !== JSON.stringify(patch.progress ?? null) : k !== "observed" && (app as Record<string, unknown>)[k] !== (patch as Record<string, unknown>)[k],
      );
      const change = await writeAppState(tx, app, { ...patch }, { type: "status", data: visible ? extra : undefined, hostId });
      if (change) changes.push(change);
      await tx.update(apps).set({ lastProbeAt: r.at }).where(and(eq(apps.id, app.id), eq(apps.hostId, hostId)));
    }
  });
  publishAll(ctx, changes);
  // An app that went down with no stop or deinstall on its way (notify.server.ts checks) is news.
  for (const { app, report: r } of stopped) {
    await notifyEvent(ctx, { kind: "app.stopped", app: app.name, host: hostId, key: `app.stopped:${app.name}:${r.at}`, detail: { at: r.at, exitCode: r.exitCode, containerState: r.containerState, lastError: r.lastError } });
  }
  return refused;
}

/**
 * Reconciles after (re)connect: the agent's inventory is the truth about the host's apps. Each
 * listed app takes the agent's observation; an app the console placed on this host that the agent
 * does not have is STOPPED ("not installed"), unless a command for it is still on its way (a
 * queued provision, say), whose own answer will tell.
 */
export async function applyInventory(ctx: Ctx, hostId: string, items: InventoryItem[]): Promise<Refusal[]> {
  const busy = new Set(
    (
      await ctx.db
        .select({ appId: commands.appId })
        .from(commands)
        .where(and(eq(commands.hostId, hostId), inArray(commands.state, [...UNFINISHED]), inArray(commands.action, [...APP_ACTIONS])))
    ).map((c) => c.appId),
  );
  const byName = await ownedApps(ctx, items.map((i) => i.app));
  const refused: Refusal[] = [];
  const reports: StatusReport[] = [];
  for (const item of items) {
    const app = byName.get(item.app);
    const why = ownership(app, hostId, item.app);
    if (why || !app) {
      refused.push({ app: item.app, reason: why ?? "unknown app" });
      continue;
    }
    if (busy.has(app.id)) continue;
    const r: StatusReport = item.observed ?? { app: item.app, status: item.status, health: app.health, at: nowIso() };
    if (!r.commitSha && item.commitSha && /^[0-9a-f]{40,64}$/.test(item.commitSha)) r.commitSha = item.commitSha;
    reports.push(r);
  }
  if (reports.length) refused.push(...(await applyStatusReports(ctx, hostId, reports)));

  const listed = new Set(items.map((i) => i.app));
  const missing = (await ctx.db.select().from(apps).where(eq(apps.hostId, hostId))).filter(
    (a) => !listed.has(a.name) && !busy.has(a.id) && (a.status !== "STOPPED" || a.health !== "unknown"),
  );
  if (missing.length) {
    const changes: AppChange[] = [];
    await ctx.db.transaction(async (tx) => {
      for (const app of missing) {
        const patch = { status: "STOPPED" as const, health: "unknown" as const, phase: null, lastError: app.status === "STOPPED" && app.lastError ? app.lastError : "not installed on its host: start or reinstall deploys it" };
        const change = await writeAppState(tx, app, { ...patch, observed: { ...patch, at: nowIso() } }, { type: "status", hostId });
        if (change) changes.push(change);
      }
    });
    publishAll(ctx, changes);
  }
  return refused;
}

/** Writes the newest usage sample per app in one transaction; only the reporting host's apps. */
export async function flushUsage(ctx: Ctx, batch: { hostId: string; sample: UsageSample }[]): Promise<(Refusal & { hostId: string })[]> {
  if (!batch.length) return [];
  const refused: (Refusal & { hostId: string })[] = [];
  for (let i = 0; i < batch.length; i += 1000) {
    const slice = batch.slice(i, i + 1000);
    const results = await ctx.db.$client.batch(
      slice.map(({ hostId, sample }) => {
        const { app, at: _at, ...usage } = sample;
        return { sql: "UPDATE apps SET usage = ? WHERE name = ? AND host_id = ?", args: [JSON.stringify(usage), app, hostId] };
      }),
      "write",
    );
    slice.forEach(({ hostId, sample }, j) => {
      if (results[j].rowsAffected === 0) refused.push({ hostId, app: sample.app, reason: `no app named ${sample.app} on the reporting host` });
      else {
        const { app, ...usage } = sample;
        ctx.bus.publish({ id: 0, type: "usage", app, usage });
      }
    });
  }
  return refused;
}

/** Log lines are passed to live viewers only (not stored), and only for the host's own apps. */
export async function publishLogLines(ctx: Ctx, hostId: string, lines: LogLine[]): Promise<Refusal[]> {
  const byName = await ownedApps(ctx, [...new Set(lines.map((l) => l.app))]);
  const refused: Refusal[] = [];
  for (const l of lines) {
    const why = ownership(byName.get(l.app), hostId, l.app);
    if (why) refused.push({ app: l.app, reason: why });
    else ctx.bus.publish({ id: 0, type: "log", app: l.app, stream: l.stream, line: l.line, at: l.at });
  }
  return refused;
}
