import { useFetcher } from "@remix-run/react";
import { CsrfInput } from "./CsrfInput";
import type { AppDto } from "../services/apps.server";

type Verb = "start" | "stop" | "restart" | "reinstall" | "deinstall";
const CONFIRM: Partial<Record<Verb, (name: string) => string>> = {
  reinstall: (n) => `Reinstall ${n}? The container is recreated from the newest commit; untracked files are kept.`,
  deinstall: (n) => `Deinstall ${n}? Its container, network and workspace are removed, then the record.`,
};

/** Start / stop / restart / reinstall / deinstall with a pending state and the error where it failed. */
export function AppActions({ app }: { app: Pick<AppDto, "name" | "status" | "hostId"> }) {
  const fetcher = useFetcher<{ ok: boolean; queued?: boolean; error: string | null }>();
  const busyVerb = fetcher.state !== "idle" ? (fetcher.formData?.get("verb") as Verb | null) : null;
  const running = app.status !== "STOPPED";
  const button = (verb: Verb, label: string, enabled: boolean, danger = false) => (
    <button
      type="submit"
      name="verb"
      value={verb}
      className={`button small ${danger ? "danger" : "secondary"}`}
      disabled={!enabled || busyVerb !== null}
      aria-label={`${label} ${app.name}`}
      aria-busy={busyVerb === verb || undefined}
      onClick={(e) => {
        const ask = CONFIRM[verb];
        if (ask && !window.confirm(ask(app.name))) e.preventDefault();
      }}
    >
      {busyVerb === verb ? `${label}…` : label}
    </button>
  );
  return (
    <fetcher.Form method="post" action={`/apps/${app.name}/action`} className="app-actions" preventScrollReset>
      <CsrfInput />
      {running ? button("stop", "Stop", true) : button("start", "Start", Boolean(app.hostId))}
      {button("restart", "Restart", Boolean(app.hostId) && running)}
      {button("reinstall", "Reinstall", Boolean(app.hostId))}
      {button("deinstall", "Deinstall", true, true)}
      {fetcher.data?.error ? (
        <span className="action-error" role="alert">
          {fetcher.data.error}
        </span>
      ) : fetcher.data?.queued ? (
        <span className="muted small" role="status">
          queued until the host is back
        </span>
      ) : null}
    </fetcher.Form>
  );
}
