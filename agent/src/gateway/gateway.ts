// The per-host gateway: the agent's forward-auth server and the Caddy child it configures. The
// app list comes from the agent's records; every change reloads Caddy's config (graceful swap).
import type { KeyObject } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { GatewayConfig } from "../config";
import type { GatewayFacts } from "../contract/gateway";
import type { Logger } from "../log";
import { GatewayAuth, newCookieKey, type AccessVerdict, type TokenVerdict } from "./auth";
import { buildCaddyConfig, type CaddyApp } from "./caddy-config";
import { CaddyProcess } from "./caddy";

export interface GatewayOptions {
  config: GatewayConfig;
  /** The agent's state dir; the gateway keeps its files under <stateDir>/gateway. */
  stateDir: string;
  consoleOrigin: string;
  hostId: () => string | null;
  consoleKey: () => KeyObject | null;
  checkToken: (app: string, hash: string) => Promise<TokenVerdict>;
  access: (app: string, upgrade: boolean) => AccessVerdict;
  log: Logger;
  tokenCacheMs?: number;
}

export class Gateway {
  private readonly caddy: CaddyProcess;
  private readonly auth: GatewayAuth;
  private readonly dir: string;
  private authDial: string | null = null;
  private apps = new Map<string, number>();
  private applied = "";
  private chain: Promise<void> = Promise.resolve();
  firewall: GatewayFacts["firewall"] = null;

  constructor(private readonly o: GatewayOptions) {
    this.dir = join(o.stateDir, "gateway");
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    chmodSync(this.dir, 0o700);
    this.caddy = new CaddyProcess({ bin: o.config.caddyBin, dir: this.dir, log: o.log });
    const { httpsPort, domain } = o.config;
    this.auth = new GatewayAuth({
      hostId: o.hostId,
      consoleKey: o.consoleKey,
      consoleOrigin: o.consoleOrigin,
      publicSuffix: `.${domain}${httpsPort === 443 ? "" : `:${httpsPort}`}`,
      cookieKey: this.cookieKey(),
      checkToken: o.checkToken,
      known: (app) => this.apps.has(app),
      access: o.access,
      log: o.log,
      tokenCacheMs: o.tokenCacheMs,
    });
  }

  /** The cookie key survives restarts (people stay signed in to apps); 0600 in the gateway dir. */
  private cookieKey(): Buffer {
    const path = join(this.dir, "cookie.key");
    if (existsSync(path)) {
      const key = Buffer.from(readFileSync(path, "utf8").trim(), "base64");
      if (key.length === 32) return key;
    }
    const key = newCookieKey();
    writeFileSync(path, key.toString("base64"), { mode: 0o600 });
    return key;
  }

  async start(apps: CaddyApp[]): Promise<void> {
    this.authDial = await this.auth.listen();
    await this.setApps(apps);
  }

  /** Reloads Caddy when the set of apps or their ports changed; calls are applied in order. */
  setApps(apps: CaddyApp[]): Promise<void> {
    this.apps = new Map(apps.map((a) => [a.name, a.port]));
    const run = this.chain.then(() => this.reload());
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async reload(): Promise<void> {
    if (!this.authDial) return;
    const { config } = this.o;
    const doc = buildCaddyConfig({
      domain: config.domain,
      tls: config.tls,
      httpsPort: config.httpsPort,
      httpPort: config.httpPort,
      adminSocket: this.caddy.adminSocket,
      storageDir: join(this.dir, "caddy-data"),
      authDial: this.authDial,
      apps: [...this.apps].map(([name, port]) => ({ name, port })),
    });
    const text = JSON.stringify(doc);
    if (text === this.applied && this.caddy.running) return;
    await this.caddy.apply(doc);
    this.applied = text;
    this.o.log("info", "gateway configured", { apps: this.apps.size, domain: config.domain });
  }

  facts(): GatewayFacts {
    const { config } = this.o;
    return {
      domain: config.domain,
      httpsPort: config.httpsPort,
      tls: config.tls,
      running: this.caddy.running,
      firewall: this.firewall,
      error: this.caddy.error,
    };
  }

  async stop(): Promise<void> {
    this.auth.close();
    await this.caddy.stop();
  }
}
