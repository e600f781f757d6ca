import { useState } from "react";
import { CsrfInput } from "./CsrfInput";
import type { AppDto } from "../services/apps.server";

type Verb = "start" | "stop" | "restart" | "reinstall" | "deinstall" | "cancel" | "remove" | "start-anyway";
const VERBS = new Set<string>(["start", "stop", "restart", "reinstall", "deinstall", "cancel", "remove", "start-anyway"]);
/** The agent's GPU refusals (memory taken, CUDA too new) end with this; the row then offers "Start anyway". */
const FORCEABLE = "start with force to try anyway";
const CONFIRM: Partial<Record<Verb, (name: string) => string>> = {
  reinstall: (n) => `Reinstall ${n}? The container is recreated from the newest commit of its branch (an app pinned to a tag or commit stays there); untracked files are kept.`,
  deinstall: (n) => `Deinstall ${n}? Its container, network and workspace are removed, then the record.`,
  cancel: (n) => `Cancel what ${n} is deploying? The app is left as its host last saw it.`,
  "start-anyway": (n) => `Start ${n} anyway? The GPU check refused it (see the reason); it may fail for lack of GPU memory or CUDA support.`,
  remove: (n) => `Remove ${n} now? Its host is offline: the record goes at once (name, port and GPUs are freed) and the host removes the container and files when it is back.`,
};

interface Outcome {
  busy: Verb | null;
  error: string | null;
  queued: boolean;
}
const IDLE: Outcome = { busy: null, error: null, queued: false };

/**
 * Start / stop / restart / reinstall / deinstall with a pending state and the error where it failed.
 *
 * A plain form (it posts without JavaScript too) that, once hydrated, sends itself with fetch()
 * instead of a Remix fetcher: the dashboard renders one per app, and a thousand fetchers cost
 * a quarter of a second of server rendering and hydration. Nothing needs reloading afterwards:
 * the action's effects (status, phase, a deleted app) arrive on the live `apps.events` stream.
 * A long list passes `csrfToken` so that its rows do not each read the root loader's data.
 */
export function AppActions({ app, csrfToken }: { app: Pick<AppDto, "name" | "status" | "hostId"> & { hostOnline?: boolean; lastError?: string | null }; csrfToken?: string | null }) {
  const [state, setState] = useState<Outcome>(IDLE);
  const running = app.status !== "STOPPED";
  const offline = Boolean(app.hostId) && app.hostOnline === false;
  const button = (verb: Verb, label: string, enabled: boolean, danger = false) => (
    <button
      type="submit"
      name="verb"
      value={verb}
      className={`button small ${danger ? "danger" : "secondary"}`}
      disabled={!enabled || state.busy !== null}
      aria-label={`${label} ${app.name}`}
      aria-busy={state.busy === verb || undefined}
    >
      {state.busy === verb ? `${label}…` : label}
    </button>
  );
  const onSubmit = async (e: React.FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = e.currentTarget;
    const submitter = (e.nativeEvent as SubmitEvent).submitter as HTMLButtonElement | null;
    const verb = submitter?.value;
    if (!verb || !VERBS.has(verb) || state.busy) return;
    const ask = CONFIRM[verb as Verb];
    if (ask && !window.confirm(ask(app.name))) return;
    const body = new FormData(form);
    body.set("verb", verb);
    setState({ busy: verb as Verb, error: null, queued: false });
    let next: Outcome;
    try {
      const res = await fetch(form.action, { method: "POST", body, headers: { accept: "application/json" } });
      const data = (await res.json().catch(() => null)) as { ok?: boolean; queued?: boolean; error?: string | null } | null;
      next = { busy: null, error: data?.error ?? (res.ok ? null : `${label(verb)} failed (HTTP ${res.status})`), queued: Boolean(data?.queued) };
    } catch {
      next = { busy: null, error: `${label(verb)} failed: the console did not answer`, queued: false };
    }
    setState(next);
  };
  return (
    <form method="post" action={`/apps/${app.name}/action`} className="app-actions" onSubmit={onSubmit}>
      {csrfToken === undefined ? <CsrfInput /> : <input type="hidden" name="_csrf" value={csrfToken ?? ""} />}
      {running ? button("stop", "Stop", true) : button("start", "Start", Boolean(app.hostId))}
      {!running && app.lastError?.includes(FORCEABLE) ? button("start-anyway", "Start anyway", Boolean(app.hostId)) : null}
      {button("restart", "Restart", Boolean(app.hostId) && running)}
      {button("reinstall", "Reinstall", Boolean(app.hostId))}
      {app.status === "STARTING" ? button("cancel", "Cancel", true) : null}
      {offline ? button("remove", "Remove now", true, true) : button("deinstall", "Deinstall", true, true)}
      {state.error ? (
        <span className="action-error" role="alert">
          {state.error}
        </span>
      ) : state.queued ? (
        <span className="muted small" role="status">
          queued until the host is back
        </span>
      ) : null}
    </form>
  );
}

function label(verb: string): string {
  return verb.charAt(0).toUpperCase() + verb.slice(1).replace("-", " ");
}
