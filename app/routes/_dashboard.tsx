import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { Link, Outlet, useLoaderData, useNavigate } from "@remix-run/react";
import { memo, useDeferredValue, useEffect, useMemo, useRef, useState } from "react";
import { AppActions } from "../components/AppActions";
import { formatBytes, MiniSpark } from "../components/AppHealth";
import { useCsrfToken } from "../components/CsrfInput";
import { requireUser } from "../auth.server";
import { lightOf, StatusLight } from "../components/StatusLight";
import { VulnBadge } from "../components/Vulnerabilities";
import { vulnerabilitySummary } from "../services/scan.server";
import { useLiveApps } from "../components/useLiveApps";
import { listApps } from "../services/apps.server";
import { listHosts } from "../services/hosts.server";
import { latestEventId } from "../services/live.server";

export const meta: MetaFunction = () => [{ title: "Apps · Docker Control Center" }];

export async function loader({ request, context }: LoaderFunctionArgs) {
  await requireUser(request, context, "viewer");
  // Read first: the list below reflects at least every change up to this event id.
  const since = await latestEventId(context.dcc.db);
  const [apps, hosts, vulns] = await Promise.all([listApps(context.dcc, undefined), listHosts(context.dcc), vulnerabilitySummary(context.dcc)]);
  return {
    since,
    // Only what the table shows (the app page loads the rest): with 1,000 apps this is most of the page's weight.
    apps: apps.map((a) => ({
      name: a.name,
      status: a.status,
      health: a.health,
      phase: a.phase,
      lastError: a.lastError,
      hostId: a.hostId,
      hostName: a.hostName,
      hostOnline: a.hostOnline,
      port: a.port,
      commitSha: a.commitSha,
      templateId: a.templateId,
      statusSince: a.statusSince,
      usage: a.usage,
      vulns: vulns.get(a.name) ?? null,
    })),
    hosts: hosts.map((h) => ({ id: h.id, name: h.name, online: h.online, address: h.address })),
  };
}

type Row = Awaited<ReturnType<typeof loader>>["apps"][number];
type SortKey = "name" | "status" | "port";
type Sort = { key: SortKey; dir: 1 | -1 };

function appUrl(port: number, address: string | null | undefined): string {
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

/** CPU samples per app from the live stream (the agent reports about every 10 s). */
const CPU_SAMPLES = 30;

/** Attention first: stopped, then starting or not answering, then running and answering. */
const RANK = { red: 0, grey: 1, amber: 2, green: 3 } as const;
const STATUS_RANK = { STOPPED: 0, STARTING: 1, RUNNING: 2 } as const;

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
function matcher(query: string): ((a: Row) => boolean) | null {
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
 * One table row; memoised so that a change to one app re-renders that row only. Its name is a
 * plain link that the table turns into a client-side navigation (one handler instead of a
 * thousand router-aware links to hydrate), and the CSRF token comes as a prop (no row subscribes
 * to router state, so a navigation does not re-render a thousand rows).
 */
const AppRow = memo(function AppRow({
  app,
  address,
  csrfToken,
  now,
  cpu,
}: {
  app: Row;
  address: string | null | undefined;
  csrfToken: string | null;
  now: number;
  cpu: number[] | undefined;
}) {
  const usage = app.usage as { cpuPct?: number; memoryBytes?: number; gpuUtilPct?: number } | null;
  return (
    <tr data-app={app.name}>
      <th scope="row" className="app-name">
        <a href={`/apps/${app.name}`}>{app.name}</a>
        {app.templateId ? <span className="tag">{app.templateId}</span> : null}
        <VulnBadge name={app.name} summary={app.vulns} />
      </th>
      <td>
        <StatusLight app={app} reason />
      </td>
      <td>{app.hostName ?? <span className="muted">—</span>}</td>
      <td>
        {app.status === "STOPPED" ? (
          <span className="mono">{app.port}</span>
        ) : (
          <a className="mono" href={appUrl(app.port, address)} target="_blank" rel="noreferrer">
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
              {usage.gpuUtilPct !== undefined ? ` · GPU ${usage.gpuUtilPct.toFixed(0)} %` : ""}
            </span>
          </>
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

export default function Dashboard() {
  const data = useLoaderData<typeof loader>();
  const { hosts } = data;
  // Each app's recent CPU samples, from the usage messages of the live stream.
  const cpuHistory = useRef(new Map<string, number[]>()).current;
  const { apps, connected } = useLiveApps(data.apps, {
    since: data.since,
    onChange: (c) => {
      const cpu = (c.usage as { cpuPct?: unknown } | undefined)?.cpuPct;
      if (c.type !== "usage" || typeof cpu !== "number") return;
      cpuHistory.set(c.app, [...(cpuHistory.get(c.app) ?? []), cpu].slice(-CPU_SAMPLES));
    },
  });
  // Uptime moves on by the minute: one re-render of the rows a minute.
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 60_000);
    return () => clearInterval(t);
  }, []);
  const [query, setQuery] = useState("");
  const [sort, setSort] = useState<Sort>({ key: "name", dir: 1 });
  // Typing stays responsive with a thousand rows: the table follows the box a frame later if it must.
  const deferredQuery = useDeferredValue(query);
  const filterRef = useRef<HTMLInputElement>(null);
  const navigate = useNavigate();
  const csrfToken = useCsrfToken();

  const addressOf = useMemo(() => new Map(hosts.map((h) => [h.id, h.address])), [hosts]);
  const rows = useMemo(() => {
    const match = matcher(deferredQuery);
    const list = match ? apps.filter(match) : apps.slice();
    const cmp = compare(sort.key);
    return list.sort(sort.dir === 1 ? cmp : (a, b) => cmp(b, a));
  }, [apps, deferredQuery, sort]);

  // "/" focuses the filter from anywhere on the page but a text field.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== "/" || e.ctrlKey || e.metaKey || e.altKey) return;
      const t = e.target as HTMLElement | null;
      if (t?.closest("input, textarea, select, [contenteditable], dialog")) return;
      e.preventDefault();
      filterRef.current?.focus();
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, []);

  const onSort = (key: SortKey) => setSort((s) => (s.key === key ? { key, dir: s.dir === 1 ? -1 : 1 } : { key, dir: 1 }));
  const filtered = query.trim() !== "";
  return (
    <>
      <section className="panel">
        <div className="panel-head">
          <div>
            <h1>Apps</h1>
            <p className="muted">
              {apps.length} app{apps.length === 1 ? "" : "s"} · {hosts.filter((h) => h.online).length} of {hosts.length} host
              {hosts.length === 1 ? "" : "s"} online ·{" "}
              <span className={connected ? "live on" : "live"} data-live={connected ? "on" : "off"}>
                {connected ? "live" : "connecting…"}
              </span>
            </p>
          </div>
          <div className="toolbar">
            <Link className="button secondary" to="/marketplace" preventScrollReset>
              Marketplace
            </Link>
            <Link className="button primary" to="/apps/new" preventScrollReset>
              Add app
            </Link>
          </div>
        </div>
        {apps.length === 0 ? (
          <div className="empty">
            <p>No apps yet.</p>
            <p className="muted">
              Add one from a git repository, or install a template from the <Link to="/marketplace">marketplace</Link>.
            </p>
          </div>
        ) : (
          <>
            <div className="filter-bar" role="search">
              <label htmlFor="apps-filter" className="sr-only">
                Filter apps
              </label>
              <input
                id="apps-filter"
                ref={filterRef}
                type="search"
                value={query}
                onChange={(e) => setQuery(e.target.value)}
                onKeyDown={(e) => {
                  if (e.key === "Escape" && query) {
                    e.preventDefault();
                    setQuery("");
                  }
                }}
                placeholder="Filter by name, status or host (press /)"
                aria-describedby="apps-filter-hint"
                autoComplete="off"
                spellCheck={false}
              />
              <span id="apps-filter-hint" className="sr-only">
                Words must all match; status:stopped, host:name and name:text narrow a word to one column. Escape clears.
              </span>
              <span className="muted small" role="status">
                {filtered ? `${rows.length} of ${apps.length} app${apps.length === 1 ? "" : "s"}` : ""}
              </span>
            </div>
            <div className="table-wrap apps-wrap">
              <table className="apps-table">
                <caption className="sr-only">Registered apps</caption>
                <thead>
                  <tr>
                    <SortHeader label="Name" k="name" sort={sort} onSort={onSort} />
                    <SortHeader label="Status" k="status" sort={sort} onSort={onSort} />
                    <th scope="col">Host</th>
                    <SortHeader label="Port" k="port" sort={sort} onSort={onSort} />
                    <th scope="col">Commit</th>
                    <th scope="col">Uptime</th>
                    <th scope="col">CPU · memory</th>
                    <th scope="col">
                      <span className="sr-only">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody
                  onClick={(e) => {
                    // The rows' name links navigate inside the app (as <Link> would); modified clicks open tabs as usual.
                    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
                    const a = (e.target as HTMLElement).closest<HTMLAnchorElement>(".app-name a");
                    if (!a) return;
                    e.preventDefault();
                    navigate(a.pathname);
                  }}
                >
                  {rows.map((app) => (
                    <AppRow
                      key={app.name}
                      app={app}
                      address={app.hostId ? addressOf.get(app.hostId) : undefined}
                      csrfToken={csrfToken}
                      now={now}
                      cpu={cpuHistory.get(app.name)}
                    />
                  ))}
                  {rows.length === 0 ? (
                    <tr>
                      <td colSpan={8} className="muted">
                        No app matches “{deferredQuery}”.
                      </td>
                    </tr>
                  ) : null}
                </tbody>
              </table>
            </div>
          </>
        )}
      </section>
      <Outlet />
    </>
  );
}
