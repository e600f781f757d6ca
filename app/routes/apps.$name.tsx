import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { Link, useLoaderData } from "@remix-run/react";
import { AppNameSchema } from "../../agent/src/contract/validation";
import { StatusLight } from "../components/StatusLight";
import { findApp } from "../services/apps.server";

export const meta: MetaFunction<typeof loader> = ({ data }) => [{ title: `${data?.app.name ?? "App"} · Docker Control Center` }];

export async function loader({ params, context }: LoaderFunctionArgs) {
  const name = AppNameSchema.safeParse(params.name);
  const app = name.success ? await findApp(context.dcc.db, name.data) : null;
  if (!app) throw new Response("No app by that name", { status: 404, statusText: "Not Found" });
  return { app };
}

export default function AppPage() {
  const { app } = useLoaderData<typeof loader>();
  const rows: [string, React.ReactNode][] = [
    ["Repository", <span className="mono break">{app.repository}</span>],
    ["Commit", app.commitSha ? <span className="mono">{app.commitSha}</span> : "—"],
    ["Start command", <code className="break">{app.startCommand}</code>],
    ["Install command", app.installCommand ? <code className="break">{app.installCommand}</code> : "—"],
    ["Port", <span className="mono">{app.port}</span>],
    ["Host", app.hostName ?? "—"],
    ["Image", app.image ?? "console default"],
    ["Template", app.templateId ?? "—"],
    ["GPU", app.gpu ? `${app.gpu.mode}${app.gpu.count ? ` · ${app.gpu.count}` : ""}${app.gpuDevices.length ? ` (devices ${app.gpuDevices.join(", ")})` : ""}` : "none"],
    ["Created", new Date(app.createdAt).toLocaleString("en-GB", { timeZone: "UTC" }) + " UTC"],
  ];
  return (
    <section className="panel">
      <nav aria-label="Breadcrumb" className="crumbs">
        <Link to="/">Apps</Link> / <span aria-current="page">{app.name}</span>
      </nav>
      <div className="panel-head">
        <h1>{app.name}</h1>
        <StatusLight app={app} />
      </div>
      <dl className="details">
        {rows.map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>{v}</dd>
          </div>
        ))}
      </dl>
    </section>
  );
}
