import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json, redirect } from "@remix-run/node";
import { Form, useActionData, useLoaderData, useNavigation, useSearchParams } from "@remix-run/react";
import { useEffect, useRef, useState } from "react";
import { RouteDialog } from "../components/Dialog";
import { requireUser } from "../access.server";
import { CsrfInput } from "../components/CsrfInput";
import { Field } from "../components/Field";
import { createApp, suggestPort } from "../services/register.server";
import { ServiceError, httpStatusOf } from "../services/errors";
import { listTemplates, type TemplateDto } from "../services/templates.server";
import { EnvEditor, GitCredentialFields, SecretsEditor } from "../components/AppConfig";
import { configFromForm } from "../components/app-config-form";

export const meta: MetaFunction = () => [{ title: "Add app · Docker Control Center" }];

const FIELDS = ["name", "repository", "startCommand", "port", "installCommand", "image", "gitRef", "idleStopMinutes"] as const;
type FieldName = (typeof FIELDS)[number];
type Values = Partial<Record<FieldName | "templateId" | "gitSubmodules", string>>;

export async function loader({ request, context }: LoaderFunctionArgs) {
  await requireUser(request, context, "operator");
  const templates = await listTemplates(context.dcc);
  // Each template's default port as it would be now: taken on the host the app would go to → the next free one.
  const ports = Object.fromEntries(
    await Promise.all(templates.map(async (t) => [t.slug, await suggestPort(context.dcc, { templateId: t.slug }).catch(() => null)] as const)),
  );
  return { templates, ports, insecureGit: context.dcc.config.allowInsecureGit };
}

/** Browser forms send strings: convert them explicitly, then the API's strict rules apply. */
export function formToInput(form: FormData): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  for (const key of [...FIELDS, "templateId"] as const) {
    const v = form.get(key);
    if (typeof v !== "string" || v === "") continue;
    input[key] = key === "port" || key === "idleStopMinutes" ? (/^\d{1,6}$/.test(v) ? Number(v) : v) : v;
  }
  // A checkbox sends "on" when ticked and nothing otherwise: the dialog always shows it (pre-ticked
  // by a template that wants submodules), so its state is the operator's choice either way.
  input.gitSubmodules = form.get("gitSubmodules") === "on";
  // ---- gateway: a checkbox is present only when ticked
  if (form.get("publicPort") === "on") input.publicPort = true;
  // ---- end gateway
  // Environment, secrets and git credential (an empty environment is simply none on create).
  const config = configFromForm(form);
  if (config.env && Object.keys(config.env).length === 0) delete config.env;
  return { ...input, ...config };
}

export async function action({ request, context }: ActionFunctionArgs) {
  const actor = await requireUser(request, context, "operator");
  const form = await request.formData();
  const values = Object.fromEntries([...FIELDS, "templateId", "gitSubmodules"].map((k) => [k, String(form.get(k) ?? "")])) as Values;
  try {
    const app = await createApp(context.dcc, actor, formToInput(form));
    return redirect(`/?created=${encodeURIComponent(app.name)}`);
  } catch (e) {
    if (!(e instanceof ServiceError)) throw e;
    return json({ message: e.message, fields: e.fields, values }, { status: httpStatusOf(e) });
  }
}

type PortPreview = { port: number; moved: boolean } | null | undefined;

function fromTemplate(t: TemplateDto | undefined, preview?: PortPreview): Values {
  if (!t) return {};
  return {
    templateId: t.slug,
    repository: t.repository,
    startCommand: t.startCommand,
    installCommand: t.installCommand ?? "",
    port: String(preview?.port ?? t.defaultPort),
    image: t.image ?? "",
    gitSubmodules: t.gitSubmodules ? "on" : "",
  };
}

function gpuText(t: TemplateDto): string {
  if (t.gpu.mode === "none") return "No GPU needed";
  const mem = t.gpu.minMemoryMiB ? `, ${Math.round(t.gpu.minMemoryMiB / 1024)} GB+` : "";
  return `${t.gpu.mode === "required" ? "Needs" : "Can use"} ${t.gpu.count ?? 1} GPU${mem}`;
}

export default function AddApp() {
  const { templates, ports, insecureGit } = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const [params] = useSearchParams();
  const navigation = useNavigation();
  const busy = navigation.state === "submitting";
  const fromParams = templates.find((t) => t.slug === params.get("template"));
  const initial = result?.values ?? { name: "", ...fromTemplate(fromParams, fromParams ? ports[fromParams.slug] : undefined) };
  const [values, setValues] = useState<Values>(initial);
  const errors: Record<string, string> = result?.fields ?? {};
  const firstField = useRef<HTMLInputElement>(null);

  useEffect(() => {
    if (result?.values) setValues(result.values);
  }, [result]);
  useEffect(() => {
    const bad = Object.keys(errors)[0];
    const el = bad ? document.getElementById(`f-${bad}`) : firstField.current;
    el?.focus();
  }, [result]); // eslint-disable-line react-hooks/exhaustive-deps

  const set = (k: keyof Values) => (e: React.ChangeEvent<HTMLInputElement | HTMLSelectElement>) => setValues((v) => ({ ...v, [k]: e.target.value }));
  const pickTemplate = (e: React.ChangeEvent<HTMLSelectElement>) => {
    const t = templates.find((x) => x.slug === e.target.value);
    setValues((v) => ({ name: v.name, ...fromTemplate(t, t ? ports[t.slug] : undefined), templateId: e.target.value }));
  };
  const chosen = templates.find((t) => t.slug === values.templateId);
  const preview = chosen ? ports[chosen.slug] : null;
  const portHint =
    preview?.moved && values.port === String(preview.port)
      ? `The template's port ${chosen!.defaultPort} is taken on the host this app would go to: ${preview.port} is the next free one.`
      : "The port the app listens on, 1024–65535.";

  const field = (k: FieldName, label: string, hint: string, props: React.ComponentPropsWithRef<"input"> = {}) => (
    <Field name={k} label={label} hint={hint} error={errors[k]}>
      {(p) => <input {...p} value={values[k] ?? ""} onChange={set(k)} autoComplete="off" spellCheck={false} {...props} />}
    </Field>
  );

  return (
    <RouteDialog title="Add app">
      <Form method="post" noValidate className="form" preventScrollReset>
        <CsrfInput />
        {result?.message && Object.keys(errors).length === 0 ? (
          <p className="form-error" role="alert">{result.message}</p>
        ) : Object.keys(errors).length > 0 ? (
          <p className="form-error" role="alert">Please fix the {Object.keys(errors).length === 1 ? "field" : "fields"} marked below.</p>
        ) : null}
        <Field name="templateId" label="Template" error={errors.templateId} hint={chosen ? `${chosen.summary} ${gpuText(chosen)}.` : "A template fills in the fields below; change what you need."}>
          {(p) => (
            <select {...p} value={values.templateId ?? ""} onChange={pickTemplate}>
              <option value="">None: my own repository</option>
              {templates.map((t) => (
                <option key={t.slug} value={t.slug}>
                  {t.name}
                </option>
              ))}
            </select>
          )}
        </Field>
        {field("name", "Name", "Lower-case letters, digits and hyphens; it names the workspace and the container.", { ref: firstField, maxLength: 63, placeholder: "my-diffusion" })}
        {field("repository", "Git repository", insecureGit ? "An https:// (or, in this lab, http://) URL." : "An https:// URL to a public repository.", { placeholder: "https://github.com/owner/repo.git", inputMode: "url" })}
        {field("startCommand", "Start command", "Runs in the container with /bin/sh -c, in /app. $PORT holds the app's port.", { placeholder: "python main.py --listen 0.0.0.0 --port ${PORT}" })}
        {field("port", "Port", portHint, { inputMode: "numeric", placeholder: "7860" })}
        <details
          className="advanced"
          open={Boolean(
            errors.installCommand ||
              errors.image ||
              errors.gitRef ||
              errors.gitSubmodules ||
              values.installCommand ||
              values.image ||
              values.gitRef ||
              errors.idleStopMinutes ||
              values.idleStopMinutes ||
              Object.keys(errors).some((k) => /^(env|secrets|gitCredential)\b/.test(k)) ||
              chosen?.secrets.some((d) => d.required),
          )}
        >
          <summary>Advanced</summary>
          {field("installCommand", "Install command", "Optional; runs before the start command on each deploy.", { placeholder: "pip install --user -r requirements.txt" })}
          {field("image", "Image", "Optional base image; the console's default NVIDIA image is used otherwise.", { placeholder: "nvcr.io/nvidia/pytorch:24.10-py3" })}
          <fieldset className="fieldset git-fieldset" aria-labelledby="git-legend">
            <legend id="git-legend">Git</legend>
            {field("gitRef", "Branch, tag or commit", "Optional; the repository's default branch otherwise. A branch is followed by Reinstall; a tag or full commit SHA stays.", { placeholder: "main, v1.10.0 or a 40-character commit SHA", maxLength: 200 })}
            <div className={`field checkbox-field${errors.gitSubmodules ? " invalid" : ""}`}>
              <label htmlFor="f-gitSubmodules">
                <input
                  id="f-gitSubmodules"
                  type="checkbox"
                  name="gitSubmodules"
                  checked={values.gitSubmodules === "on"}
                  onChange={(e) => setValues((v) => ({ ...v, gitSubmodules: e.target.checked ? "on" : "" }))}
                  aria-describedby="h-gitSubmodules"
                />{" "}
                Fetch git submodules
              </label>
              <small id="h-gitSubmodules" className="hint">One level; every submodule URL must pass the same rules as the repository.</small>
              {errors.gitSubmodules ? <p className="field-error" data-field="gitSubmodules">Submodules {errors.gitSubmodules}</p> : null}
            </div>
          </fieldset>
          {/* App configuration: a template's env defaults and declared secrets come with it. */}
          <EnvEditor key={`env-${values.templateId ?? ""}`} initial={chosen?.env ?? {}} errors={errors} />
          <SecretsEditor key={`secrets-${values.templateId ?? ""}`} declared={chosen?.secrets ?? []} errors={errors} />
          <GitCredentialFields errors={errors} />
          {/* ---- gateway */}
          {field("idleStopMinutes", "Sleep after (minutes)", "Optional; on a host with a gateway the app stops after this long without requests and starts again on the next one.", { inputMode: "numeric", placeholder: "30" })}
          <div className={`field${errors.publicPort ? " invalid" : ""}`}>
            <label>
              <input type="checkbox" name="publicPort" defaultChecked={false} /> Open on every interface, bypassing the gateway
            </label>
            <small className="hint">Warning: on a host with a gateway this bypasses its sign-in; anyone who reaches the port reaches the app.</small>
          </div>
          {/* ---- end gateway */}
        </details>
        <div className="form-actions">
          <button type="submit" className="button primary" disabled={busy}>
            {busy ? "Adding…" : "Add app"}
          </button>
        </div>
      </Form>
    </RouteDialog>
  );
}
