// The dashboard's rows: the compact shape the loader ships (one tuple per app), the row object the
// table renders, and the filter and sort over them. Pure: the loader, the table and the unit test
// share it.
import type { AppHealth, AppStatus } from "../../db/schema/apps";
import { lightOf } from "./StatusLight";
import type { VulnSummary } from "./Vulnerabilities";

export interface DashboardHost {
  id: string;
  name: string;
  online: boolean;
  address: string | null;
  /** The host's HTTPS gateway: apps open at https://<app>.<domain>[:port]/. */
  gateway?: { domain: string; httpsPort: number } | null;
}

/**
 * One app as the loader ships it: [name, status, health, phase, lastError, host index (-1: none),
 * port, commit (8 characters), templateId, statusSince, usage, [severity, count] of known
 * vulnerabilities]. About a third of the bytes of the same row as an object.
 */
export type RowTuple = [
  name: string,
  status: AppStatus,
  health: AppHealth,
  phase: string | null,
  lastError: string | null,
  host: number,
  port: number,
  commitSha: string | null,
  templateId: string | null,
  statusSince: string | null,
  usage: Record<string, number> | null,
  vulns: [VulnSummary["severity"], number] | null,
  // ---- startup progress and GPUs
  progress: StartupProgressView | null,
  gpuDevices: string[] | null,
];

/** A download the app's output shows while it starts (the `progress` of the app object). */
export interface StartupProgressView {
  label: string;
  percent: number | null;
  updatedAt?: string;
}

/** "downloading sd_xl_base_1.0.safetensors 42 %" */
export function progressText(p: StartupProgressView): string {
  return p.percent === null ? p.label : `${p.label} ${Math.round(p.percent)} %`;
}

export interface Row {
  name: string;
  status: AppStatus;
  health: AppHealth;
  phase: string | null;
  lastError: string | null;
  hostId: string | null;
  hostName: string | null;
  hostOnline: boolean;
  port: number;
  commitSha: string | null;
  templateId: string | null;
  statusSince: string | null;
  usage: Record<string, number> | null;
  vulns: VulnSummary | null;
  progress: StartupProgressView | null;
  gpuDevices: string[];
}

export function decodeRows(rows: RowTuple[], hosts: DashboardHost[]): Row[] {
  return rows.map(([name, status, health, phase, lastError, h, port, commitSha, templateId, statusSince, usage, v, progress, gpuDevices]) => {
    const host = h >= 0 ? hosts[h] : undefined;
    return {
      name,
      status,
      health,
      phase,
      lastError,
      hostId: host?.id ?? null,
      hostName: host?.name ?? null,
      hostOnline: host?.online ?? false,
      port,
      commitSha,
      templateId,
      statusSince,
      usage,
      vulns: v ? { severity: v[0], count: v[1] } : null,
      progress: progress ?? null,
      gpuDevices: gpuDevices ?? [],
    };
  });
}

export type SortKey = "name" | "status" | "port";
export type Sort = { key: SortKey; dir: 1 | -1 };

/** Attention first: stopped, then starting or not answering, then running and answering. */
const RANK = { red: 0, grey: 1, amber: 2, green: 3 } as const;
const STATUS_RANK: Record<AppStatus, number> = { STOPPED: 0, STARTING: 1, RUNNING: 2 };

function compare(key: SortKey): (a: Row, b: Row) => number {
  const byName = (a: Row, b: Row) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  if (key === "port") return (a, b) => a.port - b.port || byName(a, b);
  if (key === "status") return (a, b) => STATUS_RANK[a.status] - STATUS_RANK[b.status] || RANK[lightOf(a)] - RANK[lightOf(b)] || byName(a, b);
  return byName;
}

/**
 * The filter box: words that must all match. A plain word matches the name, status, light, host
 * or template; `name:`, `status:` and `host:` narrow it to one of them.
 */
export function matcher(query: string): ((a: Row) => boolean) | null {
  const terms = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (!terms.length) return null;
  return (a) => {
    const status = a.status.toLowerCase();
    const light = lightOf(a);
    const host = (a.hostName ?? "").toLowerCase();
    return terms.every((t) => {
      const colon = t.indexOf(":");
      const key = colon > 0 ? t.slice(0, colon) : "";
      const v = colon > 0 ? t.slice(colon + 1) : t;
      if (key === "name") return a.name.includes(v);
      if (key === "status") return status.startsWith(v) || light === v;
      if (key === "host") return host.includes(v);
      return a.name.includes(t) || status.includes(t) || light === t || host.includes(t) || (a.templateId ?? "").includes(t);
    });
  };
}

/**
 * The rows to show, filtered and sorted. The loader's list comes sorted by name and a live patch
 * never renames an app, so the usual order costs one linear check per change instead of a sort.
 */
export function visibleRows(apps: Row[], query: string, sort: Sort): Row[] {
  const match = matcher(query);
  const list = match ? apps.filter(match) : apps.slice();
  if (sort.key !== "name") list.sort(compare(sort.key));
  else if (!isSortedByName(list)) list.sort(compare("name"));
  return sort.dir === 1 ? list : list.reverse();
}

function isSortedByName(list: Row[]): boolean {
  for (let i = 1; i < list.length; i++) if (list[i - 1]!.name > list[i]!.name) return false;
  return true;
}
