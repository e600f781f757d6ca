import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json } from "@remix-run/node";
import { Form, Link, Outlet, useActionData, useLoaderData, useNavigation, useRevalidator } from "@remix-run/react";
import { useEffect } from "react";
import { parseInput } from "../services/parse-input.server";
import { hasRole, requireUser } from "../access.server";
import { OrphansPanel, type OrphansActionData } from "../components/OrphansPanel";
import { CsrfInput } from "../components/CsrfInput";
import { StatusLight } from "../components/StatusLight";
import { HostGpuPanel } from "../components/HostGpuPanel";
import { HostCleanupInput, HostOrphansInput, awaitCommand, cleanupHost, getOrphans, scanOrphans, type HostOrphans } from "../services/cleanup.server";
import { ServiceError, httpStatusOf } from "../services/errors";
import { hostApps, listHosts, updateHost, type HostApps } from "../services/hosts.server";
import { HostPrepullInput, formatBytes, prepullHost } from "../services/prepull.server";

export const meta: MetaFunction = () => [{ title: "Hosts · Docker Control Center" }];

/** With more hosts than this, orphan panels load only for hosts named in `?orphans=<id>`. */
const ORPHAN_PANELS_MAX = 100;

export async function loader({ request, context }: LoaderFunctionArgs) {
  const actor = await requireUser(request, context, "viewer");
  const [hosts, apps] = await Promise.all([listHosts(context.dcc), hostApps(context.dcc)]);
  // Orphans are host-level operations: admins only.
  let orphans: Record<string, HostOrphans> | null = null;
  if (hasRole(actor, "admin")) {
    const asked = new Set(new URL(request.url).searchParams.getAll("orphans"));
    const shown = hosts.filter((h) => hosts.length <= ORPHAN_PANELS_MAX || asked.has(h.id));
    orphans = Object.fromEntries(await Promise.all(shown.map(async (h) => [h.id, await getOrphans(context.dcc, h.id)] as const)));
  }
  return { hosts, orphans, apps };
}

/** `kind:id` form values of the orphan checkboxes. */
function itemsOf(form: FormData): { kind: string; id: string }[] | undefined {
  const items = form.getAll("item").map((v) => {
    const text = String(v);
    const at = text.indexOf(":");
    return { kind: text.slice(0, at), id: text.slice(at + 1) };
  });
  return items.length ? items : undefined;
}

/** Orphans of one host: scan, dry run of the chosen items, their removal, the scheduled-cleanup switch. */
export async function action({ request, context }: ActionFunctionArgs) {
  const actor = await requireUser(request, context, "admin");
  const form = await request.formData();
  const intent = String(form.get("intent") ?? "");
  const hostId = String(form.get("hostId") ?? "");
  const answer = (a: Partial<OrphansActionData>, init?: number) =>
    json<OrphansActionData>({ hostId, intent, commandId: null, finished: true, queued: false, error: null, ...a }, init ? { status: init } : undefined);
  try {
    if (intent === "prepull") {
      const r = await prepullHost(context.dcc, actor, parseInput(HostPrepullInput, { id: hostId }));
      return answer({ commandId: r.commandId, finished: false, queued: r.queued });
    }
    if (intent === "auto-cleanup") {
      const { id } = parseInput(HostOrphansInput, { id: hostId });
      await updateHost(context.dcc, actor, { id, autoCleanup: form.get("value") === "on" });
      return answer({});
    }
    let requested;
    if (intent === "scan") {
      requested = await scanOrphans(context.dcc, actor, parseInput(HostOrphansInput, { id: hostId }).id);
    } else if (intent === "dry-run" || intent === "remove") {
      const items = itemsOf(form);
      if (!items) throw ServiceError.field("BAD_REQUEST", "items", "choose at least one orphan");
      // The removal names exactly the items its dry run listed; the agent checks each against a fresh scan.
      requested = await cleanupHost(context.dcc, actor, parseInput(HostCleanupInput, { id: hostId, items, dryRun: intent === "dry-run" }));
    } else throw ServiceError.field("BAD_REQUEST", "intent", "must be scan, dry-run, remove, auto-cleanup or prepull");
    // A connected agent answers within moments: wait a little so the page shows the answer at once.
    const finished = requested.queued ? false : await awaitCommand(context.dcc, requested.commandId, 15_000);
    return answer({ commandId: requested.commandId, finished, queued: requested.queued });
  } catch (e) {
    if (!(e instanceof ServiceError)) throw e;
    return answer({ error: e.message }, httpStatusOf(e));
  }
}

function ago(iso: string | null): string {
  if (!iso) return "never";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

/** The host's newest pre-pull (bytes, percent, layer while it runs) and, for admins, a button for another. */
function HostPull({ host, canPrepull, busy }: { host: { id: string; name: string; online: boolean; pull: HostDtoPull }; canPrepull: boolean; busy: boolean }) {
  const p = host.pull;
  return (
    <div className="host-pull" data-pull-state={p?.state ?? "none"}>
      <h3>Base image</h3>
      {p ? (
        <div className="progress" role="status" aria-live="polite">
          <div className="progress-label small">
            <span className="mono">{p.image}</span> · {p.state}
            {p.pct !== null ? ` ${p.pct}%` : ""}
            {p.bytes && p.bytes.total > 0 ? ` · ${formatBytes(p.bytes.done)} of ${formatBytes(p.bytes.total)}` : ""}
            {p.layer ? ` · layer ${p.layer}` : ""}
          </div>
          {p.state === "pulling" || p.state === "queued" ? <progress max={100} value={p.pct ?? undefined} aria-label={`Pre-pull on ${host.name}`} /> : null}
          {p.state === "failed" || p.state === "done" ? <p className={p.state === "failed" ? "form-error small" : "muted small"}>{p.message}</p> : null}
        </div>
      ) : (
        <p className="muted small">not pre-pulled</p>
      )}
      {canPrepull ? (
        <Form method="post" preventScrollReset>
          <CsrfInput />
          <input type="hidden" name="hostId" value={host.id} />
          <button type="submit" name="intent" value="prepull" className="button small" disabled={busy || p?.state === "pulling" || p?.state === "queued"}>
            Pre-pull base image
          </button>
        </Form>
      ) : null}
    </div>
  );
}

const NO_APPS: HostApps = { total: 0, byStatus: {}, listed: [], gpuHolders: [] };

type HostDtoPull = Awaited<ReturnType<typeof listHosts>>[number]["pull"];

export default function Hosts() {
  const { hosts, apps, orphans } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>() ?? null;
  const busy = useNavigation().state !== "idle";
  const revalidator = useRevalidator();
  // Host presence changes are rare: a light refresh keeps "last seen" and online state current.
  useEffect(() => {
    const t = setInterval(() => revalidator.state === "idle" && revalidator.revalidate(), 5000);
    return () => clearInterval(t);
  }, [revalidator]);
  return (
    <>
      <section className="panel">
        <div className="panel-head">
          <div>
            <h1>Hosts</h1>
            <p className="muted">
              {hosts.filter((h) => h.online).length} of {hosts.length} online
            </p>
          </div>
          <Link className="button primary" to="/hosts/new" preventScrollReset>
            Add host
          </Link>
        </div>
        {hosts.length === 0 ? (
          <div className="empty">
            <p>No hosts yet.</p>
            <p className="muted">Add one: the console shows a one-line command that installs nothing but the agent.</p>
          </div>
        ) : (
          <ul className="host-list">
            {hosts.map((h) => {
              const mine: HostApps = apps[h.id] ?? NO_APPS;
              const gpus = h.facts.nvidia?.gpus ?? [];
              return (
                <li key={h.id} className="host" data-host={h.id}>
                  <div className="host-head">
                    <h2>{h.name}</h2>
                    <span className={`status ${h.online ? "status-green" : "status-red"}`} data-online={h.online}>
                      <span className="dot" aria-hidden="true" />
                      <span>{h.revoked ? "revoked" : h.online ? "online" : "offline"}</span>
                    </span>
                    <span className="muted small">last seen {ago(h.lastSeenAt)}</span>
                  </div>
                  <dl className="facts">
                    <div>
                      <dt>Address</dt>
                      <dd className="mono">{h.address ?? "—"}</dd>
                    </div>
                    <div>
                      <dt>Docker</dt>
                      <dd>{h.facts.docker?.version ?? "—"}</dd>
                    </div>
                    <div>
                      <dt>Compose</dt>
                      <dd>{h.facts.compose ? `${h.facts.compose.version} (${h.facts.compose.variant === "plugin" ? "docker compose" : "docker-compose"})` : "—"}</dd>
                    </div>
                    <div>
                      <dt>NVIDIA runtime</dt>
                      <dd>{h.facts.nvidia?.runtime ? `yes${h.facts.nvidia.driverVersion ? `, driver ${h.facts.nvidia.driverVersion}` : ""}` : "no"}</dd>
                    </div>
                    <div>
                      <dt>CPU / memory</dt>
                      <dd>
                        {h.facts.cpus ?? "?"} cores · {h.facts.memoryMiB ? `${Math.round(h.facts.memoryMiB / 1024)} GiB` : "?"}
                      </dd>
                    </div>
                    {/* ---- gateway */}
                    <div>
                      <dt>Gateway</dt>
                      <dd data-gateway>
                        {h.facts.gateway ? (
                          <>
                            <span className="mono">*.{h.facts.gateway.domain}</span> ({h.facts.gateway.tls === "acme" ? "Let's Encrypt" : "internal CA"}
                            {h.facts.gateway.running ? ", running" : `, not running${h.facts.gateway.error ? `: ${h.facts.gateway.error}` : ""}`})
                          </>
                        ) : (
                          <span className="muted">none: app ports are open on every interface</span>
                        )}
                      </dd>
                    </div>
                    {h.facts.gateway ? (
                      <div>
                        <dt>Container guard</dt>
                        <dd data-firewall={h.facts.gateway.firewall?.ok ? "ok" : "missing"}>
                          {h.facts.gateway.firewall?.ok ? `in place: ${h.facts.gateway.firewall.detail}` : `NOT in place${h.facts.gateway.firewall ? `: ${h.facts.gateway.firewall.detail}` : ""}`}
                        </dd>
                      </div>
                    ) : null}
                    {/* ---- end gateway */}
                  </dl>
                  {gpus.length ? (
                    <ul className="gpus" aria-label={`GPUs of ${h.name}`}>
                      {gpus.map((g) => {
                        const holder = mine.gpuHolders.find((a) => a.gpuDevices.includes(String(g.index)));
                        const memPct = g.memoryUsedMiB !== undefined && g.memoryMiB ? Math.round((g.memoryUsedMiB / g.memoryMiB) * 100) : null;
                        return (
                          <li key={g.uuid || g.index} className="gpu">
                            <div>
                              <strong>GPU {g.index}</strong> {g.name} · {Math.round(g.memoryMiB / 1024)} GiB {holder ? <span className="tag">{holder.name}</span> : <span className="muted small">free</span>}
                            </div>
                            <label className="bar">
                              <span>memory {memPct ?? "?"}%</span>
                              <meter min={0} max={100} value={memPct ?? 0} />
                            </label>
                            <label className="bar">
                              <span>utilisation {g.utilizationPct ?? "?"}%</span>
                              <meter min={0} max={100} value={g.utilizationPct ?? 0} />
                            </label>
                          </li>
                        );
                      })}
                    </ul>
                  ) : (
                    <p className="muted small">No NVIDIA GPUs reported.</p>
                  )}
                  <HostGpuPanel facts={h.facts} hostName={h.name} />
                  <HostPull host={h} canPrepull={orphans !== null} busy={busy} />
                  <div className="host-apps">
                    <h3>Apps{mine.total ? ` (${mine.total})` : ""}</h3>
                    {mine.total ? (
                      <>
                        <p className="muted small" data-app-counts>
                          {Object.entries(mine.byStatus)
                            .map(([status, n]) => `${n} ${status.toLowerCase()}`)
                            .join(" · ")}
                        </p>
                        <ul>
                          {mine.listed.map((a) => (
                            <li key={a.name}>
                              <Link to={`/apps/${a.name}`}>{a.name}</Link> <StatusLight app={a} />
                            </li>
                          ))}
                        </ul>
                        {mine.total > mine.listed.length ? (
                          <p className="small">
                            <Link to={`/?q=${encodeURIComponent(`host:${h.name}`)}`}>
                              All {mine.total} apps of {h.name} on the dashboard
                            </Link>{" "}
                            <span className="muted">(the first {mine.listed.length} by name are listed here)</span>
                          </p>
                        ) : null}
                      </>
                    ) : (
                      <p className="muted small">none</p>
                    )}
                  </div>
                  {orphans?.[h.id] ? (
                    <OrphansPanel host={h} orphans={orphans[h.id] as HostOrphans} result={result?.hostId === h.id ? result : null} busy={busy} />
                  ) : orphans ? (
                    <Link className="small" to={`/hosts?orphans=${encodeURIComponent(h.id)}`} preventScrollReset>
                      Show orphans
                    </Link>
                  ) : null}
                </li>
              );
            })}
          </ul>
        )}
      </section>
      <Outlet />
    </>
  );
}
