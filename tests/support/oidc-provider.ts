// A real OpenID Connect provider for tests: the npm package oidc-provider (8.x, Node 20) on
// loopback, with its development login and consent pages (any login name signs in; the test says
// which groups each name has). It sits behind a small proxy that can tamper with the token
// endpoint's answer — the ID token re-signed with a wrong audience, nonce, expiry, issuer, or a
// key the provider never published — so the console's checks are tested against what a hostile
// or broken provider would really send — or rewrite the state on the redirect back to the console.
import { createServer, request as httpRequest, type Server } from "node:http";
import { generateKeyPair, exportJWK, SignJWT, decodeJwt, type JWK } from "jose";
import Provider from "oidc-provider";
import { freePort } from "./net";

export type Tamper = "none" | "state" | "wrong-audience" | "wrong-nonce" | "expired" | "foreign-key" | "wrong-issuer";

export interface TestProvider {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Groups of each login name (changeable between sign-ins). */
  groups: Record<string, string[]>;
  /** What the proxy does to the next token answers. */
  tamper: Tamper;
  /** Token endpoint answers the proxy saw. */
  tokenCalls: number;
  close(): Promise<void>;
}

export async function startProvider(opts: { consoleUrl: string; groups?: Record<string, string[]> }): Promise<TestProvider> {
  const proxyPort = await freePort();
  const innerPort = await freePort();
  const issuer = `http://127.0.0.1:${proxyPort}`;
  const kid = "test-key-1";
  const signing = await generateKeyPair("RS256", { extractable: true });
  const foreign = await generateKeyPair("RS256", { extractable: true });
  const privateJwk: JWK = { ...(await exportJWK(signing.privateKey)), kid, alg: "RS256", use: "sig" };

  const state: TestProvider = {
    issuer,
    clientId: "dcc-console",
    clientSecret: "dcc-console-secret-0123456789abcdef",
    groups: opts.groups ?? {},
    tamper: "none",
    tokenCalls: 0,
    close: async () => {},
  };

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: state.clientId,
        client_secret: state.clientSecret,
        redirect_uris: [`${opts.consoleUrl}/auth/oidc/callback`],
        post_logout_redirect_uris: [`${opts.consoleUrl}/login`],
        response_types: ["code"],
        grant_types: ["authorization_code"],
        token_endpoint_auth_method: "client_secret_basic",
      },
    ],
    jwks: { keys: [privateJwk] },
    scopes: ["openid", "profile", "email", "groups"],
    claims: { openid: ["sub"], profile: ["preferred_username", "name"], email: ["email"], groups: ["groups"] },
    // Claims asked for by scope go into the ID token (as Keycloak, Authentik and Dex do for groups).
    conformIdTokenClaims: false,
    pkce: { required: () => true, methods: ["S256"] },
    features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
    cookies: { keys: ["test-cookie-key-0123456789"] },
    ttl: { Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
    findAccount: async (_ctx: unknown, sub: string) => ({
      accountId: sub,
      claims: async () => ({ sub, preferred_username: sub, name: sub, email: `${sub}@example.test`, groups: state.groups[sub] ?? [] }),
    }),
  });
  const inner = createServer(provider.callback());
  await new Promise<void>((r) => inner.listen(innerPort, "127.0.0.1", () => r()));

  const proxy: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const up = httpRequest({ host: "127.0.0.1", port: innerPort, method: req.method, path: req.url, headers: req.headers }, (upRes) => {
        const isToken = req.method === "POST" && (req.url ?? "").startsWith("/token");
        if (!isToken) {
          const headers = { ...upRes.headers };
          // The redirect back to the console, with its state swapped on the way.
          if (state.tamper === "state" && headers.location?.includes("/auth/oidc/callback")) {
            const u = new URL(headers.location);
            u.searchParams.set("state", "forged-state-value-0123456789");
            headers.location = u.href;
          }
          res.writeHead(upRes.statusCode ?? 502, headers);
          upRes.pipe(res);
          return;
        }
        const body: Buffer[] = [];
        upRes.on("data", (c) => body.push(c));
        upRes.on("end", async () => {
          state.tokenCalls++;
          let text = Buffer.concat(body).toString("utf8");
          if (upRes.statusCode === 200 && state.tamper !== "none") text = JSON.stringify(await tamper(JSON.parse(text)));
          const headers = { ...upRes.headers, "content-length": String(Buffer.byteLength(text)) };
          res.writeHead(upRes.statusCode ?? 502, headers);
          res.end(text);
        });
      });
      up.on("error", () => res.writeHead(502).end());
      up.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((r) => proxy.listen(proxyPort, "127.0.0.1", () => r()));

  async function tamper(answer: { id_token?: string }): Promise<unknown> {
    if (!answer.id_token) return answer;
    const claims = decodeJwt(answer.id_token) as Record<string, unknown>;
    let key = signing.privateKey;
    const now = Math.floor(Date.now() / 1000);
    switch (state.tamper) {
      case "wrong-audience":
        claims.aud = "someone-else";
        break;
      case "wrong-nonce":
        claims.nonce = "not-the-nonce-the-console-sent";
        break;
      case "expired":
        claims.iat = now - 7200;
        claims.exp = now - 3600;
        break;
      case "wrong-issuer":
        claims.iss = "http://127.0.0.1:1/elsewhere";
        break;
      case "foreign-key":
        key = foreign.privateKey;
        break;
    }
    const id_token = await new SignJWT(claims).setProtectedHeader({ alg: "RS256", kid }).sign(key);
    return { ...answer, id_token };
  }

  state.close = async () => {
    proxy.closeAllConnections();
    inner.closeAllConnections();
    await Promise.all([new Promise((r) => proxy.close(r)), new Promise((r) => inner.close(r))]);
  };
  return state;
}
