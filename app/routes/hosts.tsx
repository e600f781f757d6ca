import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { Link, Outlet, useLoaderData, useRevalidator } from "@remix-run/react";
import { useEffect } from "react";
import { requireUser } from "../auth.server";
import { StatusLight } from "../components/StatusLight";
import { listApps } from "../services/apps.server";
import { listHosts } from "../services/hosts.server";

export const meta: MetaFunction = () => [{ title: "Hosts · Docker Control Center" }];

export async function loader({ request, context }: LoaderFunctionArgs) {
  await requireUser(request, context, "viewer");
  const [hosts, apps] = await Promise.all([listHosts(context.dcc), listApps(context.dcc, undefined)]);
  return { hosts, apps: apps.map((a) => ({ name: a.name, hostId: a.hostId, status: a.status, health: a.health, phase: a.phase, lastError: a.lastError, gpuDevices: a.gpuDevices })) };
}

function ago(iso: string | null): string {
  if (!iso) return "never";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

export default function Hosts() {
  const { hosts, apps } = useLoaderData<typeof loader>();
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
              const mine = apps.filter((a) => a.hostId === h.id);
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
                  </dl>
                  {gpus.length ? (
                    <ul className="gpus" aria-label={`GPUs of ${h.name}`}>
                      {gpus.map((g) => {
                        const holder = mine.find((a) => a.gpuDevices.includes(String(g.index)));
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
                  <div className="host-apps">
                    <h3>Apps</h3>
                    {mine.length ? (
                      <ul>
                        {mine.map((a) => (
                          <li key={a.name}>
                            <Link to={`/apps/${a.name}`}>{a.name}</Link> <StatusLight app={a} />
                          </li>
                        ))}
                      </ul>
                    ) : (
                      <p className="muted small">none</p>
                    )}
                  </div>
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
