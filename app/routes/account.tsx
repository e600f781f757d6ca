import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { Form, useLoaderData } from "@remix-run/react";
import { eq } from "drizzle-orm";
import { sessions } from "../../db/schema";
import { requireUser } from "../access.server";
import { CsrfInput } from "../components/CsrfInput";
import { DataTable } from "../components/DataTable";

export const meta: MetaFunction = () => [{ title: "Account · Docker Control Center" }];

export async function loader({ request, context }: LoaderFunctionArgs) {
  const actor = await requireUser(request, context, "viewer");
  const mine = actor.userId
    ? await context.dcc.db
        .select({ id: sessions.id, createdAt: sessions.createdAt, lastSeenAt: sessions.lastSeenAt, address: sessions.address, userAgent: sessions.userAgent })
        .from(sessions)
        .where(eq(sessions.userId, actor.userId))
    : [];
  return {
    name: actor.id,
    kind: actor.kind,
    role: actor.role,
    sessions: mine.map((s) => ({ current: s.id === actor.sessionId, createdAt: s.createdAt, lastSeenAt: s.lastSeenAt, address: s.address, userAgent: s.userAgent })),
  };
}

export default function Account() {
  const { name, kind, role, sessions } = useLoaderData<typeof loader>();
  return (
    <section className="panel stack">
      <div className="panel-head">
        <div>
          <h1>{name}</h1>
          <p className="muted">
            {kind === "user" ? "Signed in" : "API token"} · role <strong>{role}</strong>
          </p>
        </div>
      </div>
      {kind === "user" ? (
        <>
          <DataTable caption="Your sessions" columns={["Signed in", "Last seen", "Address", "Browser"]}>
            {sessions.map((s, i) => (
              <tr key={i}>
                <td className="mono">{s.createdAt.replace("T", " ").slice(0, 19)}{s.current ? " (this one)" : ""}</td>
                <td className="mono">{s.lastSeenAt.replace("T", " ").slice(0, 19)}</td>
                <td className="mono">{s.address ?? "—"}</td>
                <td className="wrap small">{s.userAgent ?? "—"}</td>
              </tr>
            ))}
          </DataTable>
          <Form method="post" action="/logout">
            <CsrfInput />
            <input type="hidden" name="intent" value="everywhere" />
            <button type="submit" className="button danger">Sign out everywhere</button>
            <span className="muted small"> Ends every session of yours, on every device, at once.</span>
          </Form>
        </>
      ) : null}
    </section>
  );
}
