// Pure parts of the gateway: Caddy's config as data, tickets, the guard rules, loopback ports,
// sleep/wake decisions, and the gateway's configuration.
import { createPrivateKey, randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AgentConfigError, loadAgentConfig } from "../config";
import { DEFAULT_COMPOSE_BASE, renderCompose } from "../contract/compose";
import { gatewayUrl, signTicket, verifyTicket, type Ticket } from "../contract/gateway";
import { generateSigningKeyPair, publicKeyFromBase64 } from "../contract/protocol";
import { buildCaddyConfig } from "./caddy-config";
import { guardRules } from "./firewall";
import { SleepWake, asleepReason } from "./sleep";
import { establishedOnPort } from "./connections";

const input = {
  domain: "apps.example.com",
  tls: "acme" as const,
  httpsPort: 443,
  httpPort: 80,
  adminSocket: "/var/lib/dcc-agent/gateway/admin.sock",
  storageDir: "/var/lib/dcc-agent/gateway/caddy-data",
  authDial: "127.0.0.1:4100",
  apps: [
    { name: "sd", port: 7860 },
    { name: "comfy", port: 8188 },
  ],
};

describe("buildCaddyConfig", () => {
  const doc = buildCaddyConfig(input) as any;
  const routes = doc.apps.http.servers.gateway.routes;

  it("serves each app on its own name, checked by forward auth, proxied to its loopback port", () => {
    expect(routes.map((r: any) => r.match?.[0].host[0])).toEqual(["comfy.apps.example.com", "sd.apps.example.com", undefined]);
    const sd = routes[1].handle[0].routes;
    expect(sd[0].match[0].path).toEqual(["/.dcc/*"]);
    const [auth, proxy] = sd[1].handle;
    expect(auth).toMatchObject({ handler: "reverse_proxy", upstreams: [{ dial: "127.0.0.1:4100" }], rewrite: { method: "GET", uri: "/verify" } });
    expect(auth.headers.request.set["X-Dcc-App"]).toEqual(["sd"]);
    expect(proxy).toMatchObject({ handler: "reverse_proxy", upstreams: [{ dial: "127.0.0.1:7860" }], flush_interval: -1 });
    expect(proxy.headers.request.delete).toEqual(["Authorization"]);
    expect(proxy.headers.request.replace.Cookie[0].search_regexp).toMatch(/^dcc_gw=/);
    // No request body limit, no timeouts on the proxy: multi-GB uploads and hour-long requests.
    expect(JSON.stringify(proxy)).not.toMatch(/max_size|timeout|request_buffers/);
  });

  it("answers 404 on any other name, listens on the configured ports, admin only on the unix socket", () => {
    expect(routes.at(-1).handle[0]).toMatchObject({ handler: "static_response", status_code: 404 });
    expect(doc.apps.http).toMatchObject({ http_port: 80, https_port: 443 });
    expect(doc.admin.listen).toBe("unix//var/lib/dcc-agent/gateway/admin.sock");
    expect(doc.apps.tls.automation.policies[0].issuers).toEqual([{ module: "acme" }]);
    expect((buildCaddyConfig({ ...input, tls: "internal" }) as any).apps.tls.automation.policies[0].issuers).toEqual([{ module: "internal" }]);
    expect(doc.apps.pki.certificate_authorities.local.install_trust).toBe(false);
  });
});

describe("tickets", () => {
  const keys = generateSigningKeyPair();
  const priv = createPrivateKey(keys.privateKeyPem);
  const pub = publicKeyFromBase64(keys.publicKey);
  const now = Date.now();
  const t = (over: Partial<Ticket> = {}): Ticket => ({ v: 1, hostId: "h1", app: "sd", sub: "user:u1", exp: now + 60_000, until: now + 3600_000, nonce: randomBytes(9).toString("base64url"), ...over });

  it("verifies its own signature, host, app and expiry", () => {
    expect(verifyTicket(signTicket(t(), priv), pub, { hostId: "h1", app: "sd", now })).toMatchObject({ ok: true });
    expect(verifyTicket(signTicket(t(), priv), pub, { hostId: "h2", app: "sd", now })).toMatchObject({ ok: false, reason: "ticket is for another host" });
    expect(verifyTicket(signTicket(t(), priv), pub, { hostId: "h1", app: "x", now })).toMatchObject({ ok: false, reason: "ticket is for another app" });
    expect(verifyTicket(signTicket(t({ exp: now - 1 }), priv), pub, { hostId: "h1", app: "sd", now })).toMatchObject({ ok: false, reason: "ticket expired" });
    const other = createPrivateKey(generateSigningKeyPair().privateKeyPem);
    expect(verifyTicket(signTicket(t(), other), pub, { hostId: "h1", app: "sd", now })).toMatchObject({ ok: false });
    // A changed body no longer matches its signature.
    const [body, sig] = signTicket(t(), priv).split(".");
    const tampered = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(body!, "base64url").toString()), app: "x" })).toString("base64url");
    expect(verifyTicket(`${tampered}.${sig}`, pub, { hostId: "h1", app: "x", now }).ok).toBe(false);
    expect(verifyTicket("not a ticket", pub, { hostId: "h1", app: "sd", now })).toMatchObject({ ok: false, reason: "malformed ticket" });
  });

  it("builds the app URL, with the port only when it is not 443", () => {
    expect(gatewayUrl("sd", { domain: "apps.example.com", httpsPort: 443 })).toBe("https://sd.apps.example.com/");
    expect(gatewayUrl("sd", { domain: "apps.test", httpsPort: 8443 })).toBe("https://sd.apps.test:8443/");
  });
});

describe("container guard rules", () => {
  it("reject the metadata range (forwarded and to the host) and the console's port from Docker's bridges, tagged", () => {
    const rules = guardRules({ tag: "dcc-guard-abc", blockPorts: [3000] });
    expect(rules[0]).toEqual(["DOCKER-USER", "-d", "169.254.0.0/16", "-m", "comment", "--comment", "dcc-guard-abc", "-j", "REJECT"]);
    expect(rules.filter((r) => r[0] === "INPUT").map((r) => r.slice(1, 3))).toEqual([
      ["-i", "docker0"],
      ["-i", "docker0"],
      ["-i", "br-+"],
      ["-i", "br-+"],
    ]);
    expect(rules.every((r) => r.includes("dcc-guard-abc"))).toBe(true);
    expect(rules.filter((r) => r.includes("--dport")).map((r) => r[r.indexOf("--dport") + 1])).toEqual(["3000", "3000"]);
  });
});

describe("ports behind the gateway", () => {
  const spec = { appId: "a1", name: "sd", repository: "https://example.com/r.git", startCommand: "run", installCommand: null, port: 7860, image: "img:1", gpuDevices: [], capAdd: [], keepPaths: [], env: {}, secretNames: [], secretsVersion: null, resources: {}, healthPath: "/" };
  const ports = (over: object, loopbackPorts: boolean) =>
    (renderCompose({ spec: { ...spec, ...over }, hostId: "h", workspace: "/w/sd", uid: 1000, gid: 1000, base: DEFAULT_COMPOSE_BASE, loopbackPorts }) as any).services.app.ports;
  it("are published on 127.0.0.1 only, unless the app opts out with publicPort", () => {
    expect(ports({}, true)).toEqual(["127.0.0.1:7860:7860"]);
    expect(ports({ publicPort: true }, true)).toEqual(["7860:7860"]);
    expect(ports({}, false)).toEqual(["7860:7860"]);
  });
});

describe("sleep and wake", () => {
  function setup(status: string) {
    let now = 0;
    const state = { status, idleStopMinutes: 2 as number | null };
    const calls: string[] = [];
    const sw = new SleepWake({
      app: (n) => (n === "sd" ? state : undefined),
      apps: () => ["sd"],
      stop: async (n, reason) => void calls.push(`stop ${n} ${reason}`),
      start: async (n) => void calls.push(`start ${n}`),
      stateFile: join(mkdtempSync(join(tmpdir(), "dcc-sleep-")), "asleep.json"),
      log: () => {},
      now: () => now,
      minuteMs: 1000,
    });
    return { sw, state, calls, at: (t: number) => (now = t) };
  }

  it("stops an app idle past its limit with the reason, wakes it on the next request, and serves it once RUNNING", async () => {
    const { sw, state, calls, at } = setup("RUNNING");
    at(1500);
    expect(sw.access("sd")).toEqual({ ready: true });
    at(3000);
    await sw.check();
    expect(calls).toEqual([]);
    at(3600);
    await sw.check();
    expect(calls).toEqual([`stop sd ${asleepReason(2)}`]);
    expect(sw.isAsleep("sd")).toBe(true);
    state.status = "STOPPED";
    expect(sw.access("sd")).toMatchObject({ ready: false });
    await new Promise((r) => setTimeout(r, 0));
    expect(calls.at(-1)).toBe("start sd");
    state.status = "STARTING";
    expect(sw.access("sd")).toMatchObject({ ready: false });
    expect(calls.filter((c) => c === "start sd")).toHaveLength(1);
    state.status = "RUNNING";
    expect(sw.access("sd")).toEqual({ ready: true });
    expect(sw.isAsleep("sd")).toBe(false);
  });

  it("never wakes an app an operator stopped, and never sleeps one without a limit", async () => {
    const { sw, state, calls, at } = setup("STOPPED");
    expect(sw.access("sd")).toMatchObject({ ready: false, message: expect.stringMatching(/stopped/) });
    state.status = "RUNNING";
    state.idleStopMinutes = null;
    at(10_000_000);
    await sw.check();
    expect(calls).toEqual([]);
  });
});

describe("gateway configuration", () => {
  const base = ["--console", "ws://127.0.0.1:3000", "--state-dir", "/tmp/dcc-cfg-state", "--workspace-root", "/tmp/dcc-cfg-ws"];
  it("is off without DCC_GATEWAY_DOMAIN and has production defaults with it", () => {
    expect(loadAgentConfig(base, {}).gateway).toBeUndefined();
    expect(loadAgentConfig(base, { DCC_GATEWAY_DOMAIN: "apps.example.com" }).gateway).toMatchObject({ domain: "apps.example.com", tls: "acme", httpsPort: 443, httpPort: 80, tokenCacheS: 30 });
  });
  it("refuses a bad domain, TLS mode or port, naming the variable", () => {
    expect(() => loadAgentConfig(base, { DCC_GATEWAY_DOMAIN: "Apps.Example.com" })).toThrow(/DCC_GATEWAY_DOMAIN/);
    expect(() => loadAgentConfig(base, { DCC_GATEWAY_DOMAIN: "localhost" })).toThrow(/DCC_GATEWAY_DOMAIN/);
    expect(() => loadAgentConfig(base, { DCC_GATEWAY_DOMAIN: "a.b", DCC_GATEWAY_TLS: "self" })).toThrow(/DCC_GATEWAY_TLS/);
    expect(() => loadAgentConfig(base, { DCC_GATEWAY_DOMAIN: "a.b", DCC_GATEWAY_HTTPS_PORT: "70000" })).toThrow(/DCC_GATEWAY_HTTPS_PORT/);
    expect(() => loadAgentConfig(base, { DCC_GATEWAY_DOMAIN: "a.b", DCC_GATEWAY_HTTPS_PORT: "80" })).toThrow(AgentConfigError);
    expect(() => loadAgentConfig(base, { DCC_GATEWAY_DOMAIN: "a.b", DCC_GATEWAY_CONSOLE_URL: "https://u:p@x.example" })).toThrow(/DCC_GATEWAY_CONSOLE_URL/);
  });
});

describe("a host without caddy", () => {
  it("keeps the agent running and reports why there is no gateway", async () => {
    const { Gateway } = await import("./gateway");
    const gw = new Gateway({
      config: { domain: "apps.test", tls: "internal", httpsPort: 8443, httpPort: 8080, caddyBin: "/nonexistent/caddy", tokenCacheS: 30, idleMinuteMs: 60_000 },
      stateDir: mkdtempSync(join(tmpdir(), "dcc-nocaddy-")),
      consoleOrigin: "http://console.test",
      hostId: () => "h",
      consoleKey: () => null,
      checkToken: async () => ({ ok: false }),
      access: () => ({ ready: true }),
      log: () => {},
    });
    await expect(gw.start([{ name: "sd", port: 7860 }])).rejects.toThrow(/caddy could not be started/);
    expect(gw.facts()).toMatchObject({ running: false, error: expect.stringMatching(/ENOENT/) });
    await gw.stop();
  });
});

describe("open connections", () => {
  const table = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1EB4 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:D431 0100007F:1EB4 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
   2: 0100007F:1EB4 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 20 4 30 10 -1
   3: 0100007F:D432 0100007F:1EB4 06 00000000:00000000 03:00000000 00000000     0        0 0 3 0
   4: 0100007F:D433 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 4 1 0 20 4 30 10 -1`;
  it("counts established connections on a port, not listeners, TIME_WAIT or other ports", () => {
    expect(establishedOnPort(table, 7860)).toBe(2);
    expect(establishedOnPort(table, 8080)).toBe(1);
    expect(establishedOnPort(table, 9999)).toBe(0);
  });

  it("keep an app that had a WebSocket awake while they are open", async () => {
    let now = 0;
    let open = 1;
    const calls: string[] = [];
    const sw = new SleepWake({
      app: () => ({ status: "RUNNING", idleStopMinutes: 1 }),
      apps: () => ["sd"],
      stop: async (n) => void calls.push(`stop ${n}`),
      start: async () => {},
      stateFile: join(mkdtempSync(join(tmpdir(), "dcc-sleep-")), "asleep.json"),
      log: () => {},
      now: () => now,
      minuteMs: 1000,
      openConnections: async () => open,
    });
    sw.access("sd", true);
    now = 5000;
    await sw.check();
    expect(calls).toEqual([]);
    open = 0;
    now = 7000;
    await sw.check();
    expect(calls).toEqual(["stop sd"]);
  });
});
