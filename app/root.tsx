import type { LinksFunction, MetaFunction } from "@remix-run/node";
import { isRouteErrorResponse, Link, Links, Meta, NavLink, Outlet, Scripts, ScrollRestoration, useRouteError } from "@remix-run/react";
import stylesHref from "./styles.css";

export const links: LinksFunction = () => [
  { rel: "stylesheet", href: stylesHref },
  { rel: "icon", href: "data:," },
];

export const meta: MetaFunction = () => [{ title: "Docker Control Center" }];

export function Layout({ children }: { children: React.ReactNode }) {
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
          <nav aria-label="Main">
            <NavLink to="/" end>Apps</NavLink>
            <NavLink to="/marketplace">Marketplace</NavLink>
            <NavLink to="/hosts">Hosts</NavLink>
          </nav>
        </header>
        <main id="main">{children}</main>
        <ScrollRestoration />
        <Scripts />
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
