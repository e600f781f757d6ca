import type { ActionFunctionArgs, LinksFunction, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json, redirect } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData, useNavigation, useRevalidator } from "@remix-run/react";
import { useEffect, useState } from "react";
import { AppNameSchema } from "../../agent/src/contract/validation";
import { AppActions } from "../components/AppActions";
import { HealthHistory, MAX_SAMPLES, ResourceCharts, usageSample, type UsageSample } from "../components/AppHealth";
import appPageStylesHref from "../components/app-page.css";
import { LogsPanel } from "../components/LogsPanel";
import { StatusLight } from "../components/StatusLight";
import { VulnerabilityList } from "../components/Vulnerabilities";
import { listVulnerabilities, scanStatus } from "../services/scan.server";
import { useLiveApps, type LiveChange } from "../components/useLiveApps";
import { hasRole, publicOrigin, requireUser } from "../access.server";
import { DeployHistory } from "../components/DeployHistory";
import { RollbackInput, listDeploys, rollbackApp } from "../services/deploys.server";
import { httpStatusOf } from "../services/errors";
import { ShareLinks } from "../components/ShareLinks";
import { createShareLink, listShareLinks, revokeShareLink } from "../services/gateway.server";
import { CsrfInput } from "../components/CsrfInput";
import { AppConfigPanel } from "../components/AppConfig";
import { findApp } from "../services/apps.server";
import { composePreview } from "../services/compose-preview.server";
import { ServiceError } from "../services/errors";
import { promoteApp } from "../services/templates.server";
import { listAppEvents } from "../services/app-actions.server";

export const links: LinksFunction = () => [{ rel: "stylesheet", href: appPageStylesHref }];

export const meta: MetaFunction<typeof loader> = ({ data }) => [{ title: `${data?.app.name ?? "App"} · Docker Control Center` }];

export async function loader({ params, request, context }: LoaderFunctionArgs) {
  const actor = await requireUser(request, context, "viewer");
  const name = AppNameSchema.safeParse(params.name);
  const app = name.success ? await findApp(context.dcc.db, name.data) : null;
  if (!app) throw new Response("No app by that name", { status: 404, statusText: "Not Found" });
  const [timeline, compose, vulns, scan, deploys] = await Promise.all([
    listAppEvents(context.dcc, { name: app.name, limit: 200 }),
    composePreview(context.dcc, app.name),
    listVulnerabilities(context.dcc, app.name),
    scanStatus(context.dcc, app.name),
    listDeploys(context.dcc, app.name),
  ]);
  // ---- gateway: share links, for operators of an app behind a gateway
  const shares = app.url && hasRole(actor, "operator") ? await listShareLinks(context.dcc, { name: app.name }) : null;
  return { app, timeline, compose, vulns, scan, deploys, shares, canOperate: hasRole(actor, "operator") };
}

type PageAction = { error?: string; fields?: Record<string, string>; shareUrl?: string; shareError?: string; rollbackError?: string | null };

/**
 * "Promote to marketplace" (the app becomes a template that links back to it), a rollback from the
 * deploy history, or a share link made or revoked.
 */
export async function action({ params, request, context }: ActionFunctionArgs) {
  const actor = await requireUser(request, context, "operator");
  const form = await request.formData();
  if (form.get("intent") === "rollback") {
    const input = RollbackInput.safeParse({ name: params.name, commitSha: form.get("commitSha") });
    if (!input.success) return json<PageAction>({ rollbackError: "commitSha must be a full commit SHA from the history" }, { status: 400 });
    try {
      await rollbackApp(context.dcc, actor, input.data);
      return json<PageAction>({ rollbackError: null });
    } catch (e) {
      if (!(e instanceof ServiceError)) throw e;
      return json<PageAction>({ rollbackError: e.message }, { status: httpStatusOf(e) });
    }
  }
  const text = (k: string) => {
    const v = form.get(k);
    return typeof v === "string" && v !== "" ? v : undefined;
  };
  try {
    // ---- gateway: share links
    const intent = form.get("intent");
    if (intent === "share-create") {
      const hours = Number(text("hours"));
      const made = await createShareLink(context.dcc, actor, { name: String(params.name ?? ""), expiresInHours: Number.isInteger(hours) ? hours : -1, ...(text("label") ? { label: text("label") } : {}) }, publicOrigin(request, context.dcc));
      return json<PageAction>({ shareUrl: made.url });
    }
    if (intent === "share-revoke") {
      await revokeShareLink(context.dcc, actor, { name: String(params.name ?? ""), id: text("id") ?? "" });
      return json<PageAction>({});
    }
    // ---- end gateway
    const t = await promoteApp(context.dcc, actor, {
      name: String(params.name ?? ""),
      slug: text("slug"),
      title: text("title"),
      summary: text("summary"),
    });
    return redirect(`/marketplace#${t.slug}`);
  } catch (e) {
    if (!(e instanceof ServiceError)) throw e;
    const share = String(form.get("intent") ?? "").startsWith("share-");
    return json<PageAction>(share ? { shareError: e.message } : { error: e.message, fields: e.fields, rollbackError: null }, { status: e.code === "CONFLICT" ? 409 : 400 });
  }
}

function describe(e: LiveChange): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(e)) {
    if (["id", "type", "app", "at"].includes(k) || v === null || v === undefined) continue;
    parts.push(`${k}: ${typeof v === "object" ? JSON.stringify(v) : String(v)}`);
  }
  return parts.join(" · ");
}

/** The newest deploy progress (clone / install / start steps) from the timeline. */
function progressOf(timeline: LiveChange[]): { step: string; pct?: number; message?: string } | null {
  const last = timeline.find((e) => e.type === "progress" || e.type === "result" || e.type === "action");
  if (!last || last.type !== "progress") return null;
  return { step: String(last.step ?? ""), pct: typeof last.pct === "number" ? last.pct : undefined, message: last.message as string | undefined };
}

export default function AppPage() {
  const data = useLoaderData<typeof loader>();
  const [timeline, setTimeline] = useState<LiveChange[]>(data.timeline as LiveChange[]);
  useEffect(() => setTimeline(data.timeline as LiveChange[]), [data.timeline]);
  const [samples, setSamples] = useState<UsageSample[]>(() => {
    const s = usageSample(data.app.usage, Date.parse(data.app.updatedAt));
    return s ? [s] : [];
  });
  const revalidator = useRevalidator();
  const { apps } = useLiveApps([data.app], {
    app: data.app.name,
    onChange: (c) => {
      // Usage samples feed the charts, not the timeline.
      if (c.type === "usage") {
        const s = usageSample(c.usage);
        if (s) setSamples((list) => [...list, s].slice(-MAX_SAMPLES));
        return;
      }
      if (c.type === "log") return;
      // A command's end may add a deploy to the history: read it again.
      if (c.type === "result") revalidator.revalidate();
      setTimeline((t) => (t.some((x) => x.id === c.id && c.id > 0) ? t : [c, ...t].slice(0, 500)));
    },
  });
  const app = apps[0];
  const promoted = useActionData<typeof action>();
  const submitting = useNavigation().state === "submitting";
  const progress = app.status === "STARTING" ? progressOf(timeline) : null;
  const rows: [string, React.ReactNode][] = [
    ["Repository", <span className="mono break">{app.repository}</span>],
    ["Commit", app.commitSha ? <span className="mono">{app.commitSha}</span> : "—"],
    ["Git ref", <span className="mono">{app.gitRef ?? "default branch"}{app.gitSubmodules ? " · with submodules" : ""}</span>],
    ["Start command", <code className="break">{app.startCommand}</code>],
    ["Install command", app.installCommand ? <code className="break">{app.installCommand}</code> : "—"],
    [
      "Port",
      <>
        <span className="mono">{app.port}</span>
        {/* ---- gateway */}
        {app.url && app.publicPort ? (
          <span className="warn" role="note" data-public-port>
            {" "}
            published on every interface (publicPort): anyone who reaches this host's port bypasses the gateway's sign-in
          </span>
        ) : null}
      </>,
    ],
    // ---- gateway
    ["Open", app.url ? <a className="mono" href={app.url} target="_blank" rel="noreferrer">{app.url}</a> : "—"],
    ["Sleeps", app.idleStopMinutes ? `after ${app.idleStopMinutes} min without a request` : "never"],
    // ---- end gateway
    ["Host", app.hostName ?? "—"],
    ["Image", app.image ?? "console default"],
    ["Template", app.templateId ?? "—"],
    ["GPU", app.gpu ? `${app.gpu.mode}${app.gpu.count ? ` · ${app.gpu.count}` : ""}${app.gpuDevices.length ? ` (devices ${app.gpuDevices.join(", ")})` : ""}` : "none"],
    ["Health", app.health],
  ];
  return (
    <>
      <section className="panel">
        <nav aria-label="Breadcrumb" className="crumbs">
          <Link to="/">Apps</Link> / <span aria-current="page">{app.name}</span>
        </nav>
        <div className="panel-head">
          <div className="title-row">
            <h1>{app.name}</h1>
            <StatusLight app={app} />
          </div>
          <AppActions app={app} />
        </div>
        {progress ? (
          <div className="progress" role="status" aria-live="polite">
            <div className="progress-label">
              {progress.step}
              {progress.message ? ` — ${progress.message}` : ""}
            </div>
            <progress max={100} value={progress.pct} aria-label={`Deploy step ${progress.step}`} />
          </div>
        ) : null}
        {app.lastError ? (
          <p className="form-error" role="alert">
            {app.lastError}
          </p>
        ) : null}
        <dl className="details">
          {rows.map(([k, v]) => (
            <div key={k}>
              <dt>{k}</dt>
              <dd>{v}</dd>
            </div>
          ))}
        </dl>
      </section>
      <DeployHistory app={app} items={data.deploys} canRollback={data.canOperate} error={promoted?.rollbackError} />
      <AppConfigPanel app={{ name: app.name, env: data.app.env, secretNames: data.app.secretNames, hasGitCredential: data.app.hasGitCredential }} canEdit={data.canOperate} />
      <LogsPanel name={app.name} status={app.status} />
      <section className="panel" aria-labelledby="observe-title">
        <h2 id="observe-title">Health and resources</h2>
        <div className="observe">
          <div>
            <h3>Status history</h3>
            <HealthHistory timeline={timeline} current={{ status: app.status, health: app.health }} />
          </div>
          <div>
            <h3>Usage (last {MAX_SAMPLES} samples)</h3>
            <ResourceCharts samples={samples} />
          </div>
        </div>
      </section>
      <VulnerabilityList items={data.vulns} scan={data.scan} />
      <section className="panel" aria-labelledby="promote-title">
        <h2 id="promote-title">Promote to marketplace</h2>
        <Form method="post" className="form inline-form">
          <CsrfInput />
          <div className="field">
            <label htmlFor="p-slug">Template slug</label>
            <input id="p-slug" name="slug" placeholder={app.name} maxLength={63} aria-invalid={promoted?.fields?.slug ? true : undefined} />
          </div>
          <div className="field">
            <label htmlFor="p-title">Title</label>
            <input id="p-title" name="title" placeholder={app.name} maxLength={80} />
          </div>
          <div className="field wide-field">
            <label htmlFor="p-summary">Summary</label>
            <input id="p-summary" name="summary" maxLength={400} placeholder="What it is, in a sentence" />
          </div>
          <button type="submit" className="button primary" disabled={submitting || !app.commitSha}>
            Promote
          </button>
          {!app.commitSha ? <small className="hint">Available once the app has finished installing.</small> : null}
          {promoted?.error ? (
            <p className="form-error" role="alert">
              {promoted.error}
            </p>
          ) : null}
        </Form>
      </section>
      {data.shares ? <ShareLinks shares={data.shares} created={promoted?.shareUrl} error={promoted?.shareError} /> : null}
      <section className="panel" aria-labelledby="timeline-title">
        <h2 id="timeline-title">Timeline</h2>
        <ol className="timeline">
          {timeline.map((e, i) => (
            <li key={e.id > 0 ? e.id : `t${i}`} data-type={e.type}>
              <time className="muted small">{e.at ? new Date(String(e.at)).toISOString().replace("T", " ").slice(0, 19) : ""}</time>
              <strong>{e.type}</strong>
              <span className="small">{describe(e)}</span>
            </li>
          ))}
        </ol>
      </section>
      {data.compose ? (
        <section className="panel" aria-labelledby="compose-title">
          <h2 id="compose-title">Compose file</h2>
          <p className="hint">
            As the agent renders it, from this app's deploy spec with the same renderer and base template; assumed: {data.compose.assumptions.join("; ")}.
          </p>
          <pre className="compose-file" tabIndex={0} aria-label="Generated compose file (read-only)">
            {data.compose.text}
          </pre>
        </section>
      ) : null}
    </>
  );
}
