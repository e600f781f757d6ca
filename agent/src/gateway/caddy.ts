// Runs Caddy as the agent's child and loads its configuration through the admin API on a unix
// socket (POST /load: Caddy swaps servers gracefully, open connections finish on the old config).
// If Caddy exits, it is started again with backoff and the last configuration is loaded again.
// Caddy never outlives its agent: it is started under `setpriv --pdeathsig TERM` (the kernel ends
// it when the agent dies, even by SIGKILL), and a Caddy left by an earlier agent of the same state
// dir (recorded in caddy.pid) is ended before a new one starts.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import type { Logger } from "../log";

export interface CaddyOptions {
  bin: string;
  /** Folder for the socket, Caddy's home and its bootstrap config. */
  dir: string;
  log: Logger;
}

/** util-linux setpriv, when present (Debian: always, in util-linux). */
const SETPRIV = onPath("setpriv");

/** The absolute path of `bin` (as given when it has a slash, else searched on PATH), or null. */
function onPath(bin: string): string | null {
  if (bin.includes("/")) return existsSync(bin) ? bin : null;
  for (const dir of (process.env.PATH ?? "/usr/bin:/bin").split(":")) {
    if (dir && existsSync(join(dir, bin))) return join(dir, bin);
  }
  return null;
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
    this.endLeftover();
    rmSync(this.adminSocket, { force: true });
    // Bootstrap: only the admin socket; the real config follows through /load.
    const boot = join(this.o.dir, "bootstrap.json");
    writeFileSync(boot, JSON.stringify({ admin: { listen: `unix/${this.adminSocket}`, origins: ["localhost"] } }), { mode: 0o600 });
    const home = join(this.o.dir, "home");
    const bin = onPath(this.o.bin);
    if (!bin) {
      this.stopped = true;
      this.lastError = `caddy could not be started (${this.o.bin}): ENOENT, not found${this.o.bin.includes("/") ? "" : " on PATH"}`;
      throw new Error(this.lastError);
    }
    const argv = [bin, "run", "--config", boot];
    const [cmd, ...args] = SETPRIV ? [SETPRIV, "--pdeathsig", "TERM", "--", ...argv] : argv;
    const child = spawn(cmd!, args, {
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
    child.once("spawn", () => child.pid && writeFileSync(this.pidFile, String(child.pid), { mode: 0o600 }));
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

  private get pidFile() {
    return join(this.o.dir, "caddy.pid");
  }

  /** Ends a Caddy an earlier agent of this state dir left running (only if it is that Caddy). */
  private endLeftover(): void {
    if (!existsSync(this.pidFile)) return;
    const pid = Number(readFileSync(this.pidFile, "utf8").trim());
    rmSync(this.pidFile, { force: true });
    if (!Number.isInteger(pid) || pid <= 1) return;
    let cmdline = "";
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
    } catch {
      return;
    }
    if (!cmdline.includes(join(this.o.dir, "bootstrap.json"))) return;
    this.o.log("warn", "ending the gateway an earlier agent left running", { pid });
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
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
