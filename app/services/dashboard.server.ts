// The dashboard's data: one compact row per app (a tuple, not the full app object) and the hosts
// they point at by index. With 10,000 apps the loader data is most of the page's weight; the app
// page loads everything else.
import { asc, sql } from "drizzle-orm";
import { hosts, type AppHealth, type AppStatus } from "../../db/schema";
import type { ConsoleContext } from "../context.server";
import type { DashboardHost, RowTuple, StartupProgressView } from "../components/dashboard-rows";
import { latestEventId } from "./live.server";
import { hostGateway } from "./apps.server";
import { vulnerabilitySummary } from "./scan.server";

export interface DashboardData {
  /** The newest event id the rows already reflect: live patches at or before it are stale. */
  since: number;
  hosts: DashboardHost[];
  rows: RowTuple[];
}

/** What the query below returns per app: the tuple with the host's id instead of its index. */
type StoredRow = [string, AppStatus, AppHealth, string | null, string | null, string | null, number, string | null, string | null, string | null, Record<string, number> | null, StartupProgressView | null, string[] | null];

export async function dashboardData(ctx: Pick<ConsoleContext, "db">): Promise<DashboardData> {
  // Read first: the rows below reflect at least every change up to this event id.
  const since = await latestEventId(ctx.db);
  const [hostRows, appJson, vulns] = await Promise.all([
    ctx.db
      .select({ id: hosts.id, name: hosts.name, online: sql<number>`coalesce(${hosts.online} = 1 AND ${hosts.revokedAt} IS NULL, 0)`, address: hosts.address, facts: hosts.facts })
      .from(hosts)
      .orderBy(asc(hosts.name)),
    // One JSON array from SQLite instead of 10,000 driver rows: ~50 ms instead of ~400 ms here.
    ctx.db.get<{ j: string }>(sql.raw(`SELECT json_group_array(json_array(name, status, health, phase, last_error, host_id, port,
        substr(commit_sha, 1, 8), template_id, status_since, json(usage),
        CASE WHEN status = 'STARTING' THEN json(progress) END, json(gpu_devices))) AS j FROM (SELECT * FROM apps ORDER BY name)`)),
    vulnerabilitySummary(ctx),
  ]);
  const index = new Map(hostRows.map((h, i) => [h.id, i]));
  const online = hostRows.map((h) => Boolean(h.online));
  const rows = (JSON.parse(appJson?.j ?? "[]") as StoredRow[]).map(([name, status, health, phase, lastError, hostId, port, commit, templateId, statusSince, usage, progress, gpuDevices]): RowTuple => {
    const h = hostId === null ? -1 : (index.get(hostId) ?? -1);
    const v = vulns.get(name);
    // An app on an offline host shows its last status with health unknown (as toAppDto does).
    return [name, status, h >= 0 && online[h] ? health : "unknown", phase, lastError, h, port, commit, templateId, statusSince, usage, v ? [v.severity, v.count] : null, progress, gpuDevices?.length ? gpuDevices : null];
  });
  return { since, hosts: hostRows.map((h) => ({ id: h.id, name: h.name, online: Boolean(h.online), address: h.address, gateway: hostGateway(h.facts) })), rows };
}
