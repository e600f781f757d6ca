import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { Link, useLoaderData } from "@remix-run/react";
import { requireUser } from "../access.server";
import { RouteDialog } from "../components/Dialog";
import { listTemplates } from "../services/templates.server";

export const meta: MetaFunction = () => [{ title: "Marketplace · Docker Control Center" }];

export async function loader({ request, context }: LoaderFunctionArgs) {
  await requireUser(request, context, "viewer");
  return { templates: await listTemplates(context.dcc) };
}

export default function Marketplace() {
  const { templates } = useLoaderData<typeof loader>();
  return (
    <RouteDialog title="Marketplace" wide>
      <ul className="cards" aria-label="Templates">
        {templates.map((t) => (
          <li key={t.slug} id={t.slug} className="card" data-template={t.slug}>
            <h3>{t.name}</h3>
            <p className="summary">{t.summary}</p>
            <dl className="facts">
              <div>
                <dt>GPU</dt>
                <dd>
                  {t.gpu.mode === "none"
                    ? "not needed"
                    : `${t.gpu.mode} · ${t.gpu.count ?? 1}${t.gpu.minMemoryMiB ? ` × ${Math.round(t.gpu.minMemoryMiB / 1024)} GB+` : ""}`}
                </dd>
              </div>
              <div>
                <dt>Port</dt>
                <dd className="mono">{t.defaultPort}</dd>
              </div>
              {t.source === "promoted" ? (
                <div>
                  <dt>Promoted from</dt>
                  <dd>{t.originApp ? <Link to={`/apps/${t.originApp}`}>{t.originApp}</Link> : "a removed app"}</dd>
                </div>
              ) : null}
            </dl>
            <div className="card-actions">
              {t.homepage ? (
                <a href={t.homepage} target="_blank" rel="noreferrer" className="muted small">
                  Project page
                </a>
              ) : (
                <span />
              )}
              <Link className="button primary" to={`/apps/new?template=${encodeURIComponent(t.slug)}`} aria-label={`Install ${t.name}`}>
                Install
              </Link>
            </div>
          </li>
        ))}
      </ul>
    </RouteDialog>
  );
}
