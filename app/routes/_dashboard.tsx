import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { Link, Outlet, useLoaderData } from "@remix-run/react";
import { AppActions } from "../components/AppActions";
import { requireUser } from "../auth.server";
import { StatusLight } from "../components/StatusLight";
import { useLiveApps } from "../components/useLiveApps";
import { listApps } from "../services/apps.server";
import { listHosts } from "../services/hosts.server";

export const meta: MetaFunction = () => [{ title: "Apps · Docker Control Center" }];

export async function loader({ request, context }: LoaderFunctionArgs) {
  await requireUser(request, context, "viewer");
  const [apps, hosts] = await Promise.all([listApps(context.dcc, undefined), listHosts(context.dcc)]);
  return { apps, hosts: hosts.map((h) => ({ id: h.id, name: h.name, online: h.online, address: h.address })) };
}

function appUrl(port: number, address: string | null | undefined): string {
  const host = address && !address.includes(":") ? address : typeof window === "undefined" ? "localhost" : window.location.hostname;
  return `http://${host}:${port}/`;
}

export default function Dashboard() {
  const data = useLoaderData<typeof loader>();
  const { hosts } = data;
  const { apps, connected } = useLiveApps(data.apps);
  const hostById = new Map(hosts.map((h) => [h.id, h]));
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
          <div className="table-wrap">
            <table className="apps-table">
              <caption className="sr-only">Registered apps</caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Status</th>
                  <th scope="col">Host</th>
                  <th scope="col">Port</th>
                  <th scope="col">Commit</th>
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {apps.map((app) => {
                  const host = app.hostId ? hostById.get(app.hostId) : undefined;
                  return (
                    <tr key={app.name} data-app={app.name}>
                      <th scope="row" className="app-name">
                        <Link to={`/apps/${app.name}`}>{app.name}</Link>
                        {app.templateId ? <span className="tag">{app.templateId}</span> : null}
                      </th>
                      <td>
                        <StatusLight app={app} />
                      </td>
                      <td>{app.hostName ?? <span className="muted">—</span>}</td>
                      <td>
                        {app.status === "STOPPED" ? (
                          <span className="mono">{app.port}</span>
                        ) : (
                          <a className="mono" href={appUrl(app.port, host?.address)} target="_blank" rel="noreferrer">
                            {app.port}
                          </a>
                        )}
                      </td>
                      <td className="mono">{app.commitSha ? app.commitSha.slice(0, 8) : <span className="muted">—</span>}</td>
                      <td className="actions">
                        <AppActions app={app} />
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <Outlet />
    </>
  );
}
