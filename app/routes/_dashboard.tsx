import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { Link, Outlet, useLoaderData, useNavigate, useSearchParams } from "@remix-run/react";
import { useCallback, useDeferredValue, useEffect, useMemo, useRef, useState } from "react";
import { useCsrfToken } from "../components/CsrfInput";
import { requireUser } from "../access.server";
import { AppsTable } from "../components/AppsTable";
import { decodeRows, visibleRows, type Sort, type SortKey } from "../components/dashboard-rows";
import { useLiveApps } from "../components/useLiveApps";
import { dashboardData } from "../services/dashboard.server";

export const meta: MetaFunction = () => [{ title: "Apps · Docker Control Center" }];

export async function loader({ request, context }: LoaderFunctionArgs) {
  await requireUser(request, context, "viewer");
  // One compact tuple per app (the app page loads the rest): with 10,000 apps this is most of the page's weight.
  return dashboardData(context.dcc);
}

/** CPU samples per app from the live stream (the agent reports about every 10 s). */
const CPU_SAMPLES = 30;

export default function Dashboard() {
  const data = useLoaderData<typeof loader>();
  const { hosts } = data;
  const base = useMemo(() => decodeRows(data.rows, hosts), [data.rows, hosts]);
  // Each app's recent CPU samples, from the usage messages of the live stream.
  const cpuHistory = useRef(new Map<string, number[]>()).current;
  const { apps, connected } = useLiveApps(base, {
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
  // `?q=` fills the filter (the Hosts page links to `/?q=host:<name>`).
  const [searchParams] = useSearchParams();
  const [query, setQuery] = useState(() => searchParams.get("q") ?? "");
  const [sort, setSort] = useState<Sort>({ key: "name", dir: 1 });
  // Typing stays responsive with 10,000 rows: the table follows the box a frame later if it must.
  const deferredQuery = useDeferredValue(query);
  const filterRef = useRef<HTMLInputElement>(null);
  const navigate = useNavigate();
  const csrfToken = useCsrfToken();

  // Behind a gateway an app opens at its https name; otherwise at the host's address and port.
  const addressOf = useMemo(() => new Map(hosts.map((h) => [h.id, h.address])), [hosts]);
  const gatewayOf = useMemo(() => new Map(hosts.map((h) => [h.id, h.gateway ?? null])), [hosts]);
  const rows = useMemo(() => visibleRows(apps, deferredQuery, sort), [apps, deferredQuery, sort]);
  const cpuOf = useCallback((name: string) => cpuHistory.get(name), [cpuHistory]);

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
              <AppsTable
                rows={rows}
                sort={sort}
                onSort={onSort}
                emptyText={`No app matches “${deferredQuery}”.`}
                addressOf={addressOf}
                gatewayOf={gatewayOf}
                csrfToken={csrfToken}
                now={now}
                cpuOf={cpuOf}
                onNavigate={navigate}
              />
            </div>
          </>
        )}
      </section>
      <Outlet />
    </>
  );
}
