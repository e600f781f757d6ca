// Runs Caddy as the agent's child and loads its configuration through the admin API on a unix
// socket (POST /load: Caddy swaps servers gracefully, open connections finish on the old config).
// If Caddy exits, it is started again with backoff and the last configuration is loaded again.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import type { Logger } from "../log";

export interface CaddyOptions {
  bin: string;
  /** Folder for the socket, Caddy's home and its bootstrap config. */
  dir: string;
  log: Logger;
}

export class CaddyProcess {
  readonly adminSocket: string;
  private child: ChildProcess | null = null;
  private config: Record<string, unknown> | null = null;
  private stopped = false;
  private restarts = 0;
  private lastError: string | null = null;
  private loaded = false;

  constructor(private readonly o: CaddyOptions) {
    mkdirSync(join(o.dir, "home"), { recursive: true, mode: 0o700 });
    this.adminSocket = join(o.dir, "admin.sock");
  }

  get running(): boolean {
    return this.child !== null && this.loaded;
  }
  get error(): string | null {
    return this.lastError;
  }

  /** Starts Caddy (if needed) and loads `config`; resolves once Caddy accepted it. */
  async apply(config: Record<string, unknown>): Promise<void> {
    this.config = config;
    if (!this.child) await this.spawn();
    await this.load(config);
  }

  private async spawn(): Promise<void> {
    rmSync(this.adminSocket, { force: true });
    // Bootstrap: only the admin socket; the real config follows through /load.
    const boot = join(this.o.dir, "bootstrap.json");
    writeFileSync(boot, JSON.stringify({ admin: { listen: `unix/${this.adminSocket}`, origins: ["localhost"] } }), { mode: 0o600 });
    const home = join(this.o.dir, "home");
    const child = spawn(this.o.bin, ["run", "--config", boot], {
      stdio: ["ignore", "ignore", "pipe"],
      // Minimal environment: Caddy's home (autosave, CA) under the agent's state dir.
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home, XDG_DATA_HOME: join(home, "data"), XDG_CONFIG_HOME: join(home, "config") } as unknown as NodeJS.ProcessEnv,
    }) as ChildProcess;
    this.child = child;
    this.loaded = false;
    let tail = "";
    child.stderr?.on("data", (d: Buffer) => {
      tail = (tail + d.toString()).slice(-4000);
      for (const line of d.toString().split("\n")) {
        if (/"level":"(error|warn)"/.test(line)) this.o.log("warn", "caddy", { line: line.slice(0, 1000) });
      }
    });
    child.on("exit", (code, signal) => {
      if (this.child === child) this.child = null;
      this.loaded = false;
      if (this.stopped) return;
      this.lastError = `caddy exited (${signal ?? code}): ${tail.split("\n").filter(Boolean).slice(-1)[0] ?? ""}`.slice(0, 500);
      this.o.log("error", "gateway stopped; restarting it", { error: this.lastError });
      const delay = Math.min(30_000, 500 * 2 ** Math.min(this.restarts++, 6));
      setTimeout(() => {
        if (!this.stopped && this.config) this.apply(this.config).catch((e) => this.o.log("error", "gateway restart failed", { error: (e as Error).message }));
      }, delay).unref();
    });
    await new Promise<void>((resolve, reject) => {
      child.once("error", (e) => {
        // e.g. ENOENT: no caddy installed; reported in the host facts.
        this.child = null;
        this.stopped = true;
        this.lastError = `caddy could not be started (${this.o.bin}): ${e.message}`.slice(0, 500);
        reject(new Error(this.lastError));
      });
      child.once("spawn", () => resolve());
    });
    await this.waitForAdmin();
  }

  private async waitForAdmin(): Promise<void> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        await this.admin("GET", "/config/");
        return;
      } catch (e) {
        if (!this.child) throw new Error(this.lastError ?? "caddy exited during start");
        if (Date.now() > deadline) throw new Error(`caddy's admin socket did not answer: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  private async load(config: Record<string, unknown>): Promise<void> {
    try {
      await this.admin("POST", "/load", JSON.stringify(config));
      this.loaded = true;
      this.restarts = 0;
      this.lastError = null;
    } catch (e) {
      this.lastError = `caddy refused the configuration: ${(e as Error).message}`.slice(0, 500);
      throw new Error(this.lastError);
    }
  }

  private admin(method: string, path: string, body?: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = request(
        { socketPath: this.adminSocket, method, path, headers: { "content-type": "application/json", host: "localhost" }, timeout: 30_000 },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => (text += c));
          res.on("end", () => ((res.statusCode ?? 500) < 300 ? resolve(text) : reject(new Error(`${res.statusCode}: ${text.slice(0, 400)}`))));
        },
      );
      req.on("timeout", () => req.destroy(new Error("admin API timed out")));
      req.on("error", reject);
      req.end(body);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const child = this.child;
    if (!child) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => (child.kill("SIGKILL"), resolve()), 5000);
      child.once("exit", () => (clearTimeout(t), resolve()));
      child.kill("SIGTERM");
    });
  }
}
