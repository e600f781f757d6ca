// The app page's share links (operator and up, apps behind a gateway): create one that expires,
// see the new URL once, revoke one.
import { Form } from "@remix-run/react";
import { CsrfInput } from "./CsrfInput";

export interface ShareRow {
  id: string;
  label: string | null;
  createdBy: string;
  expiresAt: string;
  revokedAt: string | null;
}

export function ShareLinks({ shares, created, error }: { shares: ShareRow[]; created?: string; error?: string }) {
  const now = Date.now();
  return (
    <section className="panel" aria-labelledby="share-title">
      <h2 id="share-title">Share links</h2>
      <p className="muted small">A share link opens this app for someone without an account until it expires or is revoked (within 15 minutes).</p>
      <Form method="post" className="inline-form">
        <CsrfInput />
        <input type="hidden" name="intent" value="share-create" />
        <label htmlFor="s-hours">Valid for (hours)</label>
        <input id="s-hours" name="hours" type="number" min={1} max={720} defaultValue={24} required />
        <label htmlFor="s-label">Label</label>
        <input id="s-label" name="label" maxLength={100} placeholder="who it is for" />
        <button type="submit">Create share link</button>
      </Form>
      {created ? (
        <p role="status">
          New link (shown once): <code className="break" data-share-url>{created}</code>
        </p>
      ) : null}
      {error ? <p role="alert">{error}</p> : null}
      {shares.length ? (
        <ul aria-label="Share links">
          {shares.map((s) => {
            const state = s.revokedAt ? "revoked" : Date.parse(s.expiresAt) <= now ? "expired" : `until ${s.expiresAt.slice(0, 16).replace("T", " ")} UTC`;
            return (
              <li key={s.id} data-share={s.id}>
                <span className="mono">{s.id}</span> {s.label ? `· ${s.label} ` : ""}· by {s.createdBy} · {state}{" "}
                {!s.revokedAt && Date.parse(s.expiresAt) > now ? (
                  <Form method="post" style={{ display: "inline" }}>
                    <CsrfInput />
                    <input type="hidden" name="intent" value="share-revoke" />
                    <input type="hidden" name="id" value={s.id} />
                    <button type="submit">Revoke</button>
                  </Form>
                ) : null}
              </li>
            );
          })}
        </ul>
      ) : null}
    </section>
  );
}
