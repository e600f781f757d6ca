// The gateway end to end: the built console, a real agent with DCC_GATEWAY_DOMAIN (Caddy with its
// internal CA on high ports), an app deployed on the real Docker engine. The app's port answers on
// 127.0.0.1 only; anonymous requests get 401 or a redirect to the console; a person signed in to
// the console reaches the app in Chromium through the ticket flow; an API token reaches it until
// it is revoked (within the cache time); a share link works until revoked; containers cannot
// reach the metadata address or the console's port; an idle app sleeps and wakes on a request.
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ContainerGuard, firewallTag } from "../../agent/src/gateway/firewall";
import { launchBrowser, signIn, waitForHydration } from "../support/browser";
import { TEST_ADMIN_PASSWORD, TEST_ADMIN_USER } from "../support/console";
import { docker, inspect, listByLabel } from "../support/docker";
import { NO_CADDY, caddyBinary, gwRequest, startMetadataListener, type MetadataListener } from "../support/gateway";
import { freePort } from "../support/net";
import { waitFor } from "./agents";
import { startStack, type AppItem, type Stack } from "./stack-support";

const caddy = caddyBinary();
if (!caddy) console.warn(`gateway tests skipped: ${NO_CADDY}`);

const DOMAIN = "apps.test";
const NAME = "gw-site";
const MINUTE_MS = 1500;

describe.skipIf(!caddy)("gateway in front of a deployed app (console + agent + Caddy + Docker)", () => {
  let s: Stack;
  let httpsPort: number;
  let port: number;
  let base: string;

  const app = async () => (await s.c.query<AppItem>("apps.get", { name: NAME })).body.result!.data;
  const containerId = async () => (await listByLabel(`dcc.app=${NAME}`))[0]!;
  /** An HTTP GET from inside the app's container (busybox nc): the response, or "failed: …". */
  const fromContainer = async (url: string) => {
    const u = new URL(url);
    const script = 'printf "GET %s HTTP/1.0\\r\\n\\r\\n" "$3" | nc -w 3 "$1" "$2"';
    try {
      const out = await docker(["exec", await containerId(), "sh", "-c", script, "sh", u.hostname, u.port || "80", u.pathname], { timeoutMs: 15_000 });
      return out.startsWith("HTTP/") ? out : `failed: no answer (${out.slice(0, 100)})`;
    } catch (e) {
      return `failed: ${(e as Error).message}`;
    }
  };

  beforeAll(async () => {
    httpsPort = await freePort();
    const httpPort = await freePort();
    s = await startStack({
      HOST: "0.0.0.0",
      DCC_GATEWAY_DOMAIN: DOMAIN,
      DCC_GATEWAY_TLS: "internal",
      DCC_GATEWAY_HTTPS_PORT: String(httpsPort),
      DCC_GATEWAY_HTTP_PORT: String(httpPort),
      DCC_GATEWAY_TOKEN_CACHE_S: "2",
      DCC_GATEWAY_IDLE_MINUTE_MS: String(MINUTE_MS),
      // Facts are reported again every second (every minute in service): they must keep the gateway.
      DCC_FACTS_INTERVAL_MS: "1000",
    });
    await s.git.createRepo(NAME, { "index.html": "<h1>hello through the gateway</h1>\n" });
    port = await freePort();
    base = `https://${NAME}.${DOMAIN}:${httpsPort}`;
    const created = await s.c.mutate<AppItem>("apps.create", { name: NAME, repository: s.repoUrl(NAME), startCommand: "httpd -f -p $PORT -h /app", port, hostId: s.hostId });
    expect(created.status, JSON.stringify(created.body)).toBe(200);
    await waitFor("RUNNING", async () => (await app()).status === "RUNNING", 90_000, 200);
    // Caddy issues the name's certificate from its internal CA in the background after a reload.
    await waitFor("the gateway to serve the app", () => gwRequest(`${base}/`).then((r) => r.status === 401), 30_000, 200);
  }, 180_000);
  afterAll(async () => {
    const stateDir = s?.agent.stateDir;
    await s?.close();
    if (!stateDir) return;
    // The stack stops its agent hard (no graceful removal of its rules): take them out here.
    await new ContainerGuard({ tag: firewallTag(stateDir), blockPorts: [] }).remove();
    // Caddy never outlives its agent, even one killed with SIGKILL.
    const caddies = () =>
      readdirSync("/proc").filter((p) => /^\d+$/.test(p) && (() => {
        try {
          return readFileSync(`/proc/${p}/cmdline`, "utf8").includes(`${stateDir}/gateway/bootstrap.json`);
        } catch {
          return false;
        }
      })());
    await waitFor("the agent's caddy to end with it", () => caddies().length === 0, 10_000, 100);
  });

  it("reports the gateway and the container guard in host facts, and the app's url", async () => {
    const a = await app();
    expect(a.url).toBe(`${base}/`);
    const host = (await s.c.query<{ facts: { gateway?: Record<string, unknown> } }>("hosts.get", { id: s.hostId })).body.result!.data;
    expect(host.facts.gateway).toMatchObject({ domain: DOMAIN, httpsPort, tls: "internal", running: true, firewall: { ok: true } });
    // After the agent's periodic facts (not only its hello) the console still knows the gateway.
    await new Promise((r) => setTimeout(r, 2500));
    expect((await app()).url).toBe(`${base}/`);
    const again = (await s.c.query<{ facts: { gateway?: Record<string, unknown> } }>("hosts.get", { id: s.hostId })).body.result!.data;
    expect(again.facts.gateway).toMatchObject({ domain: DOMAIN, running: true });
  });

  it("publishes the app's port on 127.0.0.1 only", async () => {
    const info = await inspect(await containerId());
    const bindings = (info.HostConfig as unknown as { PortBindings: Record<string, { HostIp: string; HostPort: string }[]> }).PortBindings[`${port}/tcp`];
    expect(bindings).toEqual([{ HostIp: "127.0.0.1", HostPort: String(port) }]);
    const local = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(3000) });
    expect(await local.text()).toContain("hello through the gateway");
    // The host's address on the app's network: the port does not answer there.
    const gw = (await docker(["inspect", await containerId(), "--format", "{{range .NetworkSettings.Networks}}{{.Gateway}}{{end}}"])).trim();
    expect(gw).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    await expect(fetch(`http://${gw}:${port}/`, { signal: AbortSignal.timeout(3000) })).rejects.toThrow();
  });

  it("publishes the port on every interface again for an app with publicPort, and back on 127.0.0.1 without", async () => {
    const bindings = async () =>
      (await inspect(await containerId())).HostConfig as unknown as { PortBindings: Record<string, { HostIp: string }[]> };
    const waitRunning = () => waitFor("RUNNING", async () => (await app()).status === "RUNNING", 60_000, 200);
    expect((await s.c.mutate("apps.update", { name: NAME, publicPort: true })).status).toBe(200);
    await waitFor("the port on every interface", async () => (await bindings()).PortBindings[`${port}/tcp`]?.[0]?.HostIp === "", 60_000, 250).catch(async () => {
      throw new Error(`bindings: ${JSON.stringify((await bindings()).PortBindings)}`);
    });
    await waitRunning();
    expect((await app()).publicPort).toBe(true);
    expect((await s.c.mutate("apps.update", { name: NAME, publicPort: false })).status).toBe(200);
    await waitFor("the port on 127.0.0.1", async () => (await bindings()).PortBindings[`${port}/tcp`]?.[0]?.HostIp === "127.0.0.1", 60_000, 250);
    await waitRunning();
  });

  it("answers 401 without credentials, and sends a browser to the console for a ticket", async () => {
    const api = await gwRequest(`${base}/`);
    expect(api.status).toBe(401);
    expect(api.body).not.toContain("hello");
    const browser = await gwRequest(`${base}/index.html`, { accept: "text/html" });
    expect(browser.status).toBe(302);
    expect(String(browser.headers.location)).toBe(`${s.c.url}/gateway/ticket?app=${NAME}&return=${encodeURIComponent(`${base}/index.html`)}`);
    // The console refuses to hand out a ticket to anyone who is not signed in, or for another origin.
    const anon = await fetch(String(browser.headers.location), { redirect: "manual" });
    expect(anon.status).toBe(302);
    expect(anon.headers.get("location")).toMatch(/^\/login\?next=/);
    const evil = await fetch(`${s.c.url}/gateway/ticket?app=${NAME}&return=${encodeURIComponent("https://evil.example/")}`, { redirect: "manual", headers: s.c.authHeaders });
    expect(evil.status).toBe(400);
    expect(await evil.text()).toMatch(/return/);
  });

  it("lets a person signed in to the console through, in Chromium, by the ticket flow", async () => {
    const browser = await launchBrowser({ args: [`--host-resolver-rules=MAP *.${DOMAIN} 127.0.0.1`, "--ignore-certificate-errors"] });
    try {
      const page = await (await browser.newContext({ ignoreHTTPSErrors: true })).newPage();
      await signIn(page, { url: s.c.url });
      // The hosts page says the gateway runs and the container guard is in place.
      await page.goto(`${s.c.url}/hosts`);
      await page.locator('[data-firewall="ok"]').waitFor();
      expect(await page.locator("[data-gateway]").textContent()).toContain(`*.${DOMAIN}`);
      await page.goto(`${base}/index.html`);
      await page.getByRole("heading", { name: "hello through the gateway" }).waitFor({ timeout: 20_000 });
      expect(new URL(page.url()).origin).toBe(base);
      const cookies = await page.context().cookies(base);
      expect(cookies.find((c) => c.name === "dcc_gw")).toMatchObject({ httpOnly: true, secure: true });

      // Someone not signed in ends at the console's sign-in page.
      const other = await (await browser.newContext({ ignoreHTTPSErrors: true })).newPage();
      await other.goto(`${base}/index.html`);
      await other.waitForURL((u) => u.pathname === "/login");
      // Signing in there carries on to the app.
      await waitForHydration(other);
      await other.getByLabel("User name").fill(TEST_ADMIN_USER);
      await other.getByLabel("Password").fill(TEST_ADMIN_PASSWORD);
      await other.getByRole("button", { name: "Sign in" }).click();
      await other.getByRole("heading", { name: "hello through the gateway" }).waitFor({ timeout: 20_000 });
      expect(other.url()).toBe(`${base}/index.html`);

      // The operator makes a share link on the app page; a stranger with it reaches the app.
      await page.goto(`${s.c.url}/apps/${NAME}`);
      await page.getByLabel("Valid for (hours)").fill("2");
      await page.getByRole("button", { name: "Create share link" }).click();
      const shareUrl = String(await page.locator("[data-share-url]").textContent());
      expect(shareUrl).toMatch(/\/gateway\/share\/dccs_/);
      const stranger = await (await browser.newContext({ ignoreHTTPSErrors: true })).newPage();
      await stranger.goto(shareUrl);
      await stranger.getByRole("heading", { name: "hello through the gateway" }).waitFor({ timeout: 20_000 });
      await page.getByRole("button", { name: "Revoke" }).click();
      await page.locator("[data-share]", { hasText: "revoked" }).waitFor();
      const late = await (await browser.newContext({ ignoreHTTPSErrors: true })).newPage();
      expect((await late.goto(shareUrl))?.status()).toBe(404);
    } finally {
      await browser.close();
    }
  });

  it("lets an API token through, and stops it within the cache time once revoked", async () => {
    const made = (await s.c.mutate<{ token: string; item: { id: string } }>("tokens.create", { name: "gateway-ci", role: "viewer" })).body.result!.data;
    const ok = await gwRequest(`${base}/index.html`, { authorization: `Bearer ${made.token}` });
    expect(ok.status).toBe(200);
    expect(ok.body).toContain("hello through the gateway");
    expect((await s.c.mutate("tokens.revoke", { id: made.item.id })).status).toBe(200);
    const revokedAt = Date.now();
    await waitFor("the revoked token to be refused", async () => (await gwRequest(`${base}/`, { authorization: `Bearer ${made.token}` })).status === 401, 10_000, 200);
    expect(Date.now() - revokedAt).toBeLessThan(2000 + 1500);
    expect((await gwRequest(`${base}/`, { authorization: "Bearer dcc_notarealtoken000000000000000000" })).status).toBe(401);
    // The token went to the console as a hash only: neither process logged it.
    for (const text of [s.c.output(), s.agent.output()]) expect(text).not.toContain(made.token);
  });

  it("opens the app through a share link until it is revoked", async () => {
    const made = (await s.c.mutate<{ url: string; item: { id: string } }>("apps.shareCreate", { name: NAME, expiresInHours: 1 })).body.result!.data;
    expect(made.url).toMatch(new RegExp(`^${s.c.url}/gateway/share/dccs_`));
    const first = await fetch(made.url, { redirect: "manual" });
    expect(first.status).toBe(302);
    const landing = String(first.headers.get("location"));
    expect(landing.startsWith(`${base}/.dcc/ticket?t=`)).toBe(true);
    const r = await gwRequest(landing);
    expect(r.status).toBe(302);
    const cookie = String(r.headers["set-cookie"]).split(";")[0];
    expect((await gwRequest(`${base}/index.html`, { cookie })).body).toContain("hello through the gateway");
    // The link's secret is nowhere in plain text: not in the database, the audit log or either log.
    const secret = made.url.split("/").pop()!;
    const dump = JSON.stringify([(await s.c.db().execute("SELECT * FROM gateway_shares")).rows, (await s.c.db().execute("SELECT * FROM audit_log")).rows]);
    expect(dump).toContain(made.item.id);
    for (const text of [dump, s.c.output(), s.agent.output()]) expect(text).not.toContain(secret);
    // Revoked: the link no longer hands out tickets.
    expect((await s.c.mutate("apps.shareRevoke", { name: NAME, id: made.item.id })).status).toBe(200);
    expect((await fetch(made.url, { redirect: "manual" })).status).toBe(404);
    // Bad input names the field and creates nothing.
    const bad = await s.c.mutate("apps.shareCreate", { name: NAME, expiresInHours: 0 });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toMatch(/expiresInHours/);
  });

  it("keeps containers off the metadata address and the console's port", async () => {
    let meta: MetadataListener;
    const dir = await mkdtemp(join(tmpdir(), "dcc-meta-"));
    try {
      meta = await startMetadataListener(dir);
    } catch (e) {
      // No network namespaces here (not root): say so rather than pass.
      throw new Error(`cannot build the metadata listener (needs root and iproute2): ${(e as Error).message}`);
    }
    const guard = new ContainerGuard({ tag: firewallTag(s.agent.stateDir), blockPorts: [s.c.port] });
    try {
      const hostIp = (await docker(["inspect", await containerId(), "--format", "{{range .NetworkSettings.Networks}}{{.Gateway}}{{end}}"])).trim();
      const consoleFromContainer = `http://${hostIp}:${s.c.port}/healthz`;
      const metaUrl = `http://${meta.address}/index.html`;
      // With the agent's rules in place: both refused.
      expect(await fromContainer(metaUrl)).toMatch(/^failed/);
      expect(await fromContainer(consoleFromContainer)).toMatch(/^failed/);
      // Control: without them, both answer (so the refusals above are the rules' doing) — unless
      // another agent with a gateway runs on this machine meanwhile (its own rules would refuse too).
      await guard.remove();
      const ours = firewallTag(s.agent.stateDir);
      const foreign = execFileSync("iptables", ["-S"], { encoding: "utf8" }).split("\n").filter((l) => l.includes("dcc-guard-") && !l.includes(ours));
      if (foreign.length) console.warn(`control skipped: another agent's guard rules are in place (${foreign.length})`);
      else {
        expect(await fromContainer(metaUrl)).toContain("metadata-secret");
        expect(await fromContainer(consoleFromContainer)).not.toMatch(/^failed/);
      }
    } finally {
      expect((await guard.apply()).ok).toBe(true);
      await meta.close();
      await rm(dir, { recursive: true, force: true });
    }
    expect(await fromContainer(`http://${meta.address}/`)).toMatch(/^failed/);
  });

  it("puts the app to sleep after idleStopMinutes without requests and wakes it on the next one", async () => {
    const upd = await s.c.mutate<AppItem>("apps.update", { name: NAME, idleStopMinutes: 1 });
    expect(upd.status, JSON.stringify(upd.body)).toBe(200);
    const asleep = await waitFor(
      "the app to fall asleep",
      async () => {
        const a = await app();
        return a.status === "STOPPED" && a.lastError === "asleep after 1 min idle" && a;
      },
      60_000,
      200,
    );
    expect(asleep.idleStopMinutes).toBe(1);
    expect(await listByLabel(`dcc.app=${NAME}`)).toHaveLength(1);
    expect((await inspect(await containerId())).State.Running).toBe(false);

    const token = (await s.c.mutate<{ token: string }>("tokens.create", { name: "gateway-wake", role: "viewer" })).body.result!.data.token;
    const waking = await gwRequest(`${base}/index.html`, { accept: "text/html", authorization: `Bearer ${token}` });
    expect(waking.status).toBe(503);
    expect(waking.body).toMatch(/waking up/);
    expect(waking.body).toMatch(/http-equiv="refresh"/);
    const page = await waitFor(
      "the app to answer again",
      async () => {
        const r = await gwRequest(`${base}/index.html`, { authorization: `Bearer ${token}` });
        return r.status === 200 && r.body;
      },
      60_000,
      250,
    );
    expect(page).toContain("hello through the gateway");
    expect((await app()).status).toBe("RUNNING");
  });
});
