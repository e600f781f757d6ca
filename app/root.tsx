import type { LinksFunction, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { Form, isRouteErrorResponse, Link, Links, Meta, NavLink, Outlet, Scripts, ScrollRestoration, useRouteError, useRouteLoaderData } from "@remix-run/react";
import { requestActor, sessionCsrfToken } from "./access.server";
import { CsrfInput } from "./components/CsrfInput";
import { useNonce } from "./nonce";
import securityStylesHref from "./security.css";
import stylesHref from "./styles.css";

export const links: LinksFunction = () => [
  { rel: "stylesheet", href: stylesHref },
  { rel: "stylesheet", href: securityStylesHref },
  { rel: "icon", href: "data:," },
];

export const meta: MetaFunction = () => [{ title: "Docker Control Center" }];

/** Who is signed in (for the header) and the session's CSRF token (for every form and tRPC write). */
export async function loader({ request, context }: LoaderFunctionArgs) {
  const actor = await requestActor(context, request);
  if (actor.kind === "anonymous") return { user: null, csrfToken: null };
  return { user: { name: actor.id, role: actor.role, kind: actor.kind }, csrfToken: sessionCsrfToken(context.dcc, actor) };
}

export function Layout({ children }: { children: React.ReactNode }) {
  const nonce = useNonce();
  const user = useRouteLoaderData<typeof loader>("root")?.user ?? null;
  return (
    <html lang="en">
      <head>
        <meta charSet="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <Meta />
        <Links />
      </head>
      <body>
        <a className="skip" href="#main">Skip to content</a>
        <header className="topbar">
          <Link to="/" className="brand">
            <span aria-hidden="true" className="brand-mark">◆</span> Docker Control Center
          </Link>
          {user ? (
            <nav aria-label="Main">
              <NavLink to="/" end>Apps</NavLink>
              <NavLink to="/marketplace">Marketplace</NavLink>
              <NavLink to="/hosts">Hosts</NavLink>
              {user.role === "admin" ? (
                <>
                  <NavLink to="/settings/users">Users</NavLink>
                  <NavLink to="/settings/tokens">Tokens</NavLink>
                  <NavLink to="/settings/notifications">Notifications</NavLink>
                  <NavLink to="/settings/registries">Registries</NavLink>
                  <NavLink to="/audit">Audit</NavLink>
                </>
              ) : null}
            </nav>
          ) : null}
          {user ? (
            <div className="user-menu">
              <Link to="/account" className="user-name" title={`Signed in as ${user.name} (${user.role})`}>
                {user.name} <span className="role-tag">{user.role}</span>
              </Link>
              {user.kind === "user" ? (
                <Form method="post" action="/logout">
                  <CsrfInput />
                  <button type="submit" className="link-button">Sign out</button>
                </Form>
              ) : null}
            </div>
          ) : null}
        </header>
        <main id="main">{children}</main>
        <ScrollRestoration nonce={nonce} />
        <Scripts nonce={nonce} />
      </body>
    </html>
  );
}

export default function App() {
  return <Outlet />;
}

export function ErrorBoundary() {
  const error = useRouteError();
  const title = isRouteErrorResponse(error) ? `${error.status} ${error.statusText}` : "Something went wrong";
  const detail = isRouteErrorResponse(error) ? String(error.data ?? "") : error instanceof Error ? error.message : "";
  return (
    <section className="panel error-page" role="alert">
      <h1>{title}</h1>
      {detail ? <p>{detail}</p> : null}
      <Link to="/">Back to apps</Link>
    </section>
  );
}
