// The gateway's Caddy configuration, built as data (Caddy's native JSON, loaded through its admin
// API): one route per app at <app>.<domain>, each checked by the agent's forward-auth endpoint and
// then proxied to the app's loopback port with WebSockets, streaming and no timeouts or body limit.
import type { GatewayTlsMode } from "../contract/gateway";

export interface CaddyApp {
  name: string;
  port: number;
}

export interface CaddyConfigInput {
  domain: string;
  tls: GatewayTlsMode;
  httpsPort: number;
  httpPort: number;
  /** Unix socket of Caddy's admin API (never a TCP port: any local process could reconfigure it). */
  adminSocket: string;
  /** Where Caddy keeps certificates and its internal CA. */
  storageDir: string;
  /** The agent's forward-auth server, host:port on loopback. */
  authDial: string;
  apps: CaddyApp[];
}

/** The cookie the agent sets after a ticket; never forwarded to the app. */
export const GATEWAY_COOKIE = "dcc_gw";
/** Paths the agent answers itself on every app's name (ticket landing). */
export const GATEWAY_PATH_PREFIX = "/.dcc/";

export function buildCaddyConfig(input: CaddyConfigInput): Record<string, unknown> {
  const appRoutes = [...input.apps]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((app) => appRoute(app, input));
  return {
    // The socket sits in a 0700 folder; requests on it name Host: localhost.
    admin: { listen: `unix/${input.adminSocket}`, origins: ["localhost"] },
    // No telemetry, no writes outside the agent's state dir.
    storage: { module: "file_system", root: input.storageDir },
    apps: {
      http: {
        http_port: input.httpPort,
        https_port: input.httpsPort,
        servers: {
          gateway: {
            listen: [`:${input.httpsPort}`],
            routes: [
              ...appRoutes,
              // Any other name on this port: nothing here (no app list is revealed).
              { handle: [{ handler: "static_response", status_code: 404, body: "No app at this address.\n" }] },
            ],
            // Hour-long requests (Gradio queues, large uploads): no read/write deadline on the server.
            idle_timeout: "10m",
          },
        },
      },
      tls: {
        automation: {
          policies: [{ issuers: [input.tls === "internal" ? { module: "internal" } : { module: "acme" }] }],
        },
      },
      // Caddy's internal CA is for labs; it never touches the host's trust store.
      pki: { certificate_authorities: { local: { install_trust: false } } },
    },
  };
}

function appRoute(app: CaddyApp, input: CaddyConfigInput): Record<string, unknown> {
  // Set (not added) by Caddy on every auth request: a client cannot choose which app it is checked for.
  const appHeader = { "X-Dcc-App": [app.name] };
  return {
    match: [{ host: [`${app.name}.${input.domain}`] }],
    terminal: true,
    handle: [
      {
        handler: "subroute",
        routes: [
          {
            match: [{ path: [`${GATEWAY_PATH_PREFIX}*`] }],
            terminal: true,
            handle: [{ handler: "reverse_proxy", upstreams: [{ dial: input.authDial }], headers: { request: { set: appHeader } } }],
          },
          {
            handle: [
              // forward_auth: the original request is held while the agent answers a GET for it;
              // 2xx lets it through, anything else (401, redirect, waking page) is the answer.
              {
                handler: "reverse_proxy",
                upstreams: [{ dial: input.authDial }],
                rewrite: { method: "GET", uri: "/verify" },
                headers: {
                  request: {
                    set: { ...appHeader, "X-Forwarded-Method": ["{http.request.method}"], "X-Forwarded-Uri": ["{http.request.uri}"] },
                  },
                },
                handle_response: [{ match: { status_code: [2] }, routes: [{ handle: [] }] }],
              },
              {
                handler: "reverse_proxy",
                upstreams: [{ dial: `127.0.0.1:${app.port}` }],
                // Stream responses at once (server-sent events, Gradio progress, downloads).
                flush_interval: -1,
                headers: {
                  request: {
                    // The app never sees the console credential nor the gateway cookie.
                    delete: ["Authorization"],
                    replace: { Cookie: [{ search_regexp: `${GATEWAY_COOKIE}=[^;]*(;\\s*)?`, replace: "" }] },
                  },
                },
              },
            ],
          },
        ],
      },
    ],
  };
}
