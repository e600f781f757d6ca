// The configuration sections of the Add App dialog (Environment, Secrets, Git credential) and the
// app page's Configuration panel. Secret values and the git token are write-only: inputs are
// masked, never pre-filled, and the page only ever shows secret names.
import { useFetcher } from "@remix-run/react";
import { useState } from "react";
import { CsrfInput } from "./CsrfInput";
import { sectionErrors } from "./app-config-form";

type Row = { name: string; value: string };

function Errors({ list }: { list: [string, string][] }) {
  if (!list.length) return null;
  return (
    <ul className="field-error" data-field={list[0]![0].split(".")[0]}>
      {list.map(([k, v]) => (
        <li key={k}>
          {k} {v}
        </li>
      ))}
    </ul>
  );
}

/** Key/value rows posted as envName/envValue pairs. */
export function EnvEditor({ initial, errors }: { initial: Record<string, string>; errors: Record<string, string> }) {
  const [rows, setRows] = useState<Row[]>(() => Object.entries(initial).map(([name, value]) => ({ name, value })));
  const set = (i: number, k: keyof Row, v: string) => setRows((r) => r.map((row, j) => (j === i ? { ...row, [k]: v } : row)));
  return (
    <fieldset className="kv-editor" aria-labelledby="env-title">
      <legend id="env-title">Environment</legend>
      <small className="hint">Plain variables, visible to anyone who can see the app. Values are passed exactly as typed: a $ stays a $.</small>
      {/* Always present, so an emptied list clears the app's env. */}
      <input type="hidden" name="envName" value="" />
      <input type="hidden" name="envValue" value="" />
      {rows.map((row, i) => (
        <div className="kv-row" key={i}>
          <input aria-label={`Variable ${i + 1}`} name="envName" value={row.name} onChange={(e) => set(i, "name", e.target.value)} placeholder="COMMANDLINE_ARGS" autoComplete="off" spellCheck={false} />
          <input aria-label={`Value ${i + 1}`} name="envValue" value={row.value} onChange={(e) => set(i, "value", e.target.value)} placeholder="--xformers" autoComplete="off" spellCheck={false} />
          <button type="button" className="button" onClick={() => setRows((r) => r.filter((_, j) => j !== i))} aria-label={`Remove variable ${row.name || i + 1}`}>
            Remove
          </button>
        </div>
      ))}
      <button type="button" className="button" onClick={() => setRows((r) => [...r, { name: "", value: "" }])}>
        Add variable
      </button>
      <Errors list={sectionErrors(errors, "env")} />
    </fieldset>
  );
}

export interface DeclaredSecret {
  name: string;
  description: string;
  required: boolean;
}

/** Masked rows posted as secretName/secretValue pairs; a template's declared secrets come first. */
export function SecretsEditor({ declared, errors }: { declared: DeclaredSecret[]; errors: Record<string, string> }) {
  const [extra, setExtra] = useState<string[]>([]);
  return (
    <fieldset className="kv-editor" aria-labelledby="secrets-title">
      <legend id="secrets-title">Secrets</legend>
      <small className="hint">Write-only: stored encrypted, given to the app as environment variables, shown as *** in its logs, never displayed again.</small>
      {declared.map((d) => (
        <div className="kv-row" key={`d-${d.name}`}>
          <input type="hidden" name="secretName" value={d.name} />
          <label htmlFor={`s-${d.name}`} className="mono">
            {d.name}
            {d.required ? " (required)" : ""}
          </label>
          <input id={`s-${d.name}`} type="password" name="secretValue" autoComplete="new-password" aria-describedby={`sd-${d.name}`} aria-invalid={errors[`secrets.${d.name}`] ? true : undefined} />
          <small id={`sd-${d.name}`} className="hint">
            {d.description}
          </small>
        </div>
      ))}
      {extra.map((name, i) => (
        <div className="kv-row" key={`x-${i}`}>
          <input aria-label={`Secret ${i + 1}`} name="secretName" value={name} onChange={(e) => setExtra((x) => x.map((n, j) => (j === i ? e.target.value : n)))} placeholder="API_KEY" autoComplete="off" spellCheck={false} />
          <input aria-label={`Secret ${i + 1} value`} type="password" name="secretValue" autoComplete="new-password" />
          <button type="button" className="button" onClick={() => setExtra((x) => x.filter((_, j) => j !== i))}>
            Remove
          </button>
        </div>
      ))}
      <button type="button" className="button" onClick={() => setExtra((x) => [...x, ""])}>
        Add secret
      </button>
      <Errors list={sectionErrors(errors, "secrets")} />
    </fieldset>
  );
}

/** Username and token for a private repository (write-only). */
export function GitCredentialFields({ errors, has }: { errors: Record<string, string>; has?: boolean }) {
  return (
    <fieldset className="kv-editor" aria-labelledby="git-title">
      <legend id="git-title">Git credential</legend>
      <small className="hint">
        For a private HTTPS repository: a username (optional) and an access token. Write-only{has ? "; one is set — typing a token replaces it" : ""}.
      </small>
      <div className="kv-row">
        <input aria-label="Git user" name="gitUsername" placeholder="user (optional)" autoComplete="off" spellCheck={false} />
        <input aria-label="Git token" type="password" name="gitToken" placeholder={has ? "•••••• (set)" : "token"} autoComplete="new-password" />
      </div>
      <Errors list={sectionErrors(errors, "gitCredential")} />
    </fieldset>
  );
}

type ConfigAnswer = { ok: boolean; error?: string; fields?: Record<string, string> };

/** The app page's Configuration panel: env (edit and save), secret names (set, replace, remove), git credential. */
export function AppConfigPanel({ app, canEdit }: { app: { name: string; env: Record<string, string>; secretNames: string[]; hasGitCredential: boolean }; canEdit: boolean }) {
  const env = useFetcher<ConfigAnswer>({ key: "config-env" });
  const secrets = useFetcher<ConfigAnswer>({ key: "config-secrets" });
  const git = useFetcher<ConfigAnswer>({ key: "config-git" });
  const action = `/apps/${app.name}/config`;
  const answer = (f: { data?: ConfigAnswer; state: string }) =>
    f.data && f.state === "idle" ? (
      <p className={f.data.ok ? "hint" : "form-error"} role={f.data.ok ? "status" : "alert"}>
        {f.data.ok ? "Saved; the app is being updated." : f.data.error}
      </p>
    ) : null;
  return (
    <section className="panel" aria-labelledby="config-title">
      <h2 id="config-title">Configuration</h2>
      <h3>Environment</h3>
      {canEdit ? (
        <env.Form method="post" action={action} className="form">
          <CsrfInput />
          <input type="hidden" name="intent" value="env" />
          <EnvEditor key={JSON.stringify(app.env)} initial={app.env} errors={env.data?.fields ?? {}} />
          <button type="submit" className="button primary" disabled={env.state !== "idle"}>
            Save environment
          </button>
          {answer(env)}
        </env.Form>
      ) : (
        <dl className="details">
          {Object.entries(app.env).map(([k, v]) => (
            <div key={k}>
              <dt className="mono">{k}</dt>
              <dd className="mono break">{v}</dd>
            </div>
          ))}
        </dl>
      )}
      <h3>Secrets</h3>
      <ul className="secret-list" aria-label="Secret names">
        {app.secretNames.length === 0 ? <li className="muted">None</li> : null}
        {app.secretNames.map((n) => (
          <li key={n} data-secret={n}>
            <span className="mono">{n}</span> <span className="muted">(set)</span>
            {canEdit ? (
              <secrets.Form method="post" action={action} className="inline-form">
                <CsrfInput />
                <input type="hidden" name="intent" value="secrets" />
                <input type="hidden" name="secretName" value={n} />
                <input type="password" name="secretValue" aria-label={`New value for ${n}`} placeholder="new value" autoComplete="new-password" />
                <button type="submit" className="button">
                  Replace
                </button>
                <button type="submit" className="button danger" name="secretRemove" value={n}>
                  Remove
                </button>
              </secrets.Form>
            ) : null}
          </li>
        ))}
      </ul>
      {canEdit ? (
        <secrets.Form method="post" action={action} className="form inline-form">
          <CsrfInput />
          <input type="hidden" name="intent" value="secrets" />
          <input name="secretName" aria-label="New secret" placeholder="NAME" autoComplete="off" spellCheck={false} />
          <input type="password" name="secretValue" aria-label="New secret value" placeholder="value" autoComplete="new-password" />
          <button type="submit" className="button primary">
            Set secret
          </button>
          <Errors list={sectionErrors(secrets.data?.fields ?? {}, "secrets")} />
          {answer(secrets)}
        </secrets.Form>
      ) : null}
      <h3>Git credential</h3>
      <p>{app.hasGitCredential ? "Set (write-only)." : "None: the repository is cloned without credentials."}</p>
      {canEdit ? (
        <git.Form method="post" action={action} className="form">
          <CsrfInput />
          <input type="hidden" name="intent" value="git" />
          <GitCredentialFields errors={git.data?.fields ?? {}} has={app.hasGitCredential} />
          <button type="submit" className="button primary">
            {app.hasGitCredential ? "Replace credential" : "Set credential"}
          </button>
          {app.hasGitCredential ? (
            <button type="submit" className="button danger" name="gitRemove" value="on">
              Remove credential
            </button>
          ) : null}
          {answer(git)}
        </git.Form>
      ) : null}
    </section>
  );
}
