import { useWindowVirtualizer } from "@tanstack/react-virtual";
import { memo, useLayoutEffect, useRef, useState } from "react";
import { AppActions } from "./AppActions";
import { formatBytes, MiniSpark } from "./AppHealth";
import { progressText, type Row, type Sort, type SortKey } from "./dashboard-rows";
import { StatusLight } from "./StatusLight";
import { formatMiB } from "../../agent/src/contract/units";
import { VulnBadge } from "./Vulnerabilities";
import { gatewayUrl } from "../../agent/src/contract/gateway-url";

type GatewayRef = { domain: string; httpsPort: number };

/** Row height before it is measured (one line of cells at desktop width). */
const ROW_ESTIMATE = 49;
/** Rows rendered beyond the viewport on each side: scrolling a screenful shows no blank rows. */
const OVERSCAN = 12;
/** What the server assumes of the viewport: enough rows for a tall screen, and the client's first render matches. */
const INITIAL_RECT = { width: 1440, height: 1200 };

function appUrl(name: string, port: number, address: string | null | undefined, gateway: GatewayRef | null | undefined): string {
  if (gateway) return gatewayUrl(name, gateway);
  const host = address && !address.includes(":") ? address : typeof window === "undefined" ? "localhost" : window.location.hostname;
  return `http://${host}:${port}/`;
}

function uptime(since: string | null, now: number): string {
  if (!since) return "—";
  const s = Math.max(0, Math.floor((now - Date.parse(since)) / 1000));
  if (s < 60) return "< 1 min";
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

interface RowProps {
  app: Row;
  index: number;
  address: string | null | undefined;
  gateway?: GatewayRef | null;
  csrfToken: string | null;
  now: number;
  cpu: number[] | undefined;
  measure: (el: HTMLTableRowElement | null) => void;
}

/**
 * One table row; memoised so that a change to one app re-renders that row only. Its name is a
 * plain link that the table turns into a client-side navigation (one handler instead of a router-
 * aware link per row), and the CSRF token comes as a prop (no row subscribes to router state).
 */
const AppRow = memo(function AppRow({ app, index, address, gateway, csrfToken, now, cpu, measure }: RowProps) {
  const usage = app.usage as { cpuPct?: number; memoryBytes?: number; gpuUtilPct?: number; gpuMemoryMiB?: number } | null;
  const progress = app.status === "STARTING" ? app.progress : null;
  return (
    <tr data-app={app.name} data-index={index} aria-rowindex={index + 2} ref={measure}>
      <th scope="row" className="app-name">
        <a href={`/apps/${app.name}`}>{app.name}</a>
        {app.templateId ? <span className="tag">{app.templateId}</span> : null}
        <VulnBadge name={app.name} summary={app.vulns} />
      </th>
      <td>
        <StatusLight app={app} reason />
        {progress ? (
          <span className="startup-progress small" data-progress={progress.percent ?? ""} title={progressText(progress)}>
            {progress.percent !== null ? (
              <span className="startup-progress-bar">
                <progress max={100} value={progress.percent} aria-label={`${app.name}: ${progressText(progress)}`} />
                <span className="mono">{Math.round(progress.percent)} %</span>
              </span>
            ) : null}
            <span className="startup-progress-text">{progress.label}</span>
          </span>
        ) : null}
      </td>
      <td>{app.hostName ?? <span className="muted">—</span>}</td>
      <td>
        {app.status === "STOPPED" ? (
          <span className="mono">{app.port}</span>
        ) : (
          <a className="mono" href={appUrl(app.name, app.port, address, gateway)} target="_blank" rel="noreferrer">
            {app.port}
          </a>
        )}
      </td>
      <td className="mono">{app.commitSha ? app.commitSha.slice(0, 8) : <span className="muted">—</span>}</td>
      <td className="small" data-uptime>
        {app.status === "RUNNING" ? uptime(app.statusSince, now) : <span className="muted">—</span>}
      </td>
      <td className="usage-cell small">
        {usage && app.status !== "STOPPED" ? (
          <>
            <MiniSpark values={cpu ?? []} label={`CPU of ${app.name}, last ${cpu?.length ?? 0} samples`} />
            <span>
              {usage.cpuPct !== undefined ? `${usage.cpuPct.toFixed(0)} %` : ""}
              {usage.memoryBytes !== undefined ? ` · ${formatBytes(usage.memoryBytes)}` : ""}
            </span>
          </>
        ) : (
          <span className="muted">—</span>
        )}
      </td>
      <td className="small gpu-cell" data-gpu>
        {app.gpuDevices.length || usage?.gpuMemoryMiB !== undefined ? (
          <span title={app.gpuDevices.length ? `GPU ${app.gpuDevices.join(", ")}` : undefined}>
            {app.gpuDevices.length ? `GPU ${app.gpuDevices.join(",")}` : "GPU"}
            {usage?.gpuMemoryMiB !== undefined && app.status !== "STOPPED" ? ` · ${formatMiB(usage.gpuMemoryMiB)}` : ""}
            {usage?.gpuUtilPct !== undefined && app.status !== "STOPPED" ? ` · ${usage.gpuUtilPct.toFixed(0)} %` : ""}
          </span>
        ) : (
          <span className="muted">—</span>
        )}
      </td>
      <td className="actions">
        <AppActions app={app} csrfToken={csrfToken} />
      </td>
    </tr>
  );
});

function SortHeader({ label, k, sort, onSort }: { label: string; k: SortKey; sort: Sort; onSort: (k: SortKey) => void }) {
  const active = sort.key === k;
  return (
    <th scope="col" aria-sort={active ? (sort.dir === 1 ? "ascending" : "descending") : undefined}>
      <button type="button" className="sort" onClick={() => onSort(k)}>
        {label}
        <span aria-hidden="true" className="sort-mark">
          {active ? (sort.dir === 1 ? "▲" : "▼") : "↕"}
        </span>
      </button>
    </th>
  );
}

/**
 * The apps table, windowed: only the rows in (and near) the viewport are in the DOM, between two
 * spacer rows that keep the page's scroll height. It stays a <table> with its header, and
 * aria-rowcount / aria-rowindex tell assistive technology where each rendered row sits in the
 * whole list. The page scrolls as before (the window is the scroll element).
 */
export function AppsTable(props: {
  rows: Row[];
  sort: Sort;
  onSort: (k: SortKey) => void;
  emptyText: string;
  addressOf: Map<string, string | null>;
  gatewayOf?: Map<string, GatewayRef | null>;
  csrfToken: string | null;
  now: number;
  cpuOf: (name: string) => number[] | undefined;
  onNavigate: (path: string) => void;
}) {
  const { rows, sort, onSort } = props;
  const body = useRef<HTMLTableSectionElement>(null);
  // Where the table body starts on the page (the virtualizer counts from the top of the document).
  const [margin, setMargin] = useState(0);
  useLayoutEffect(() => {
    const measure = () => body.current && setMargin(body.current.getBoundingClientRect().top + window.scrollY);
    measure();
    window.addEventListener("resize", measure);
    return () => window.removeEventListener("resize", measure);
  }, []);
  const v = useWindowVirtualizer({
    count: rows.length,
    estimateSize: () => ROW_ESTIMATE,
    overscan: OVERSCAN,
    scrollMargin: margin,
    initialRect: INITIAL_RECT,
    getItemKey: (i) => rows[i]!.name,
  });
  const items = v.getVirtualItems();
  const top = items.length ? items[0]!.start - margin : 0;
  const bottom = items.length ? v.getTotalSize() - (items[items.length - 1]!.end - margin) : 0;
  return (
    <table className="apps-table" aria-rowcount={rows.length + 1} data-rows={rows.length}>
      <caption className="sr-only">Registered apps</caption>
      <thead>
        <tr aria-rowindex={1}>
          <SortHeader label="Name" k="name" sort={sort} onSort={onSort} />
          <SortHeader label="Status" k="status" sort={sort} onSort={onSort} />
          <th scope="col">Host</th>
          <SortHeader label="Port" k="port" sort={sort} onSort={onSort} />
          <th scope="col">Commit</th>
          <th scope="col">Uptime</th>
          <th scope="col">CPU · memory</th>
          <th scope="col">GPU</th>
          <th scope="col">
            <span className="sr-only">Actions</span>
          </th>
        </tr>
      </thead>
      <tbody
        ref={body}
        onClick={(e) => {
          // The rows' name links navigate inside the app (as <Link> would); modified clicks open tabs as usual.
          if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
          const a = (e.target as HTMLElement).closest<HTMLAnchorElement>(".app-name a");
          if (!a) return;
          e.preventDefault();
          props.onNavigate(a.pathname);
        }}
      >
        {top > 0 ? <tr className="spacer" aria-hidden="true" style={{ height: top }} /> : null}
        {items.map((it) => {
          const app = rows[it.index]!;
          return (
            <AppRow
              key={app.name}
              app={app}
              index={it.index}
              address={app.hostId ? props.addressOf.get(app.hostId) : undefined}
              gateway={app.hostId ? props.gatewayOf?.get(app.hostId) : undefined}
              csrfToken={props.csrfToken}
              now={props.now}
              cpu={props.cpuOf(app.name)}
              measure={v.measureElement}
            />
          );
        })}
        {bottom > 0 ? <tr className="spacer" aria-hidden="true" style={{ height: bottom }} /> : null}
        {rows.length === 0 ? (
          <tr>
            <td colSpan={9} className="muted">
              {props.emptyText}
            </td>
          </tr>
        ) : null}
      </tbody>
    </table>
  );
}
