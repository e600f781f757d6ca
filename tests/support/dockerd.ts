// Restarts the Docker daemon the way scripts/test-deps.sh starts it (setsid nohup dockerd with the
// same arguments, log appended to /var/log/dcc-dockerd.log), and brings it back if a test left it
// down. Only for root on a test machine: every container without a restart policy stops.
import { spawn } from "node:child_process";
import { openSync, readFileSync } from "node:fs";
import { dockerCli } from "./docker";
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);
const PID_FILE = "/var/run/docker.pid";
const LOG = "/var/log/dcc-dockerd.log";

function daemonPid(): number | null {
  try {
    const pid = Number(readFileSync(PID_FILE, "utf8").trim());
    if (!pid) return null;
    process.kill(pid, 0);
    return pid;
  } catch {
    return null;
  }
}

async function engineAnswers(): Promise<boolean> {
  const bin = (await dockerCli()) ?? "docker";
  try {
    await execFileAsync(bin, ["info", "--format", "{{.ServerVersion}}"], { timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

async function waitUntil(what: string, fn: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`dockerd: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

let lastArgv: string[] | null = null;

function start(argv: string[]): void {
  const log = openSync(LOG, "a");
  const child = spawn("setsid", ["nohup", ...argv], { detached: true, stdio: ["ignore", log, log] });
  child.unref();
}

/** SIGTERMs dockerd, waits for it to exit, starts it again with the same arguments, waits for `docker info`. Returns the ms it was away. */
export async function restartDockerd(): Promise<number> {
  const pid = daemonPid();
  if (pid === null) throw new Error("dockerd is not running (no live pid in /var/run/docker.pid)");
  const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  lastArgv = argv;
  const t0 = Date.now();
  process.kill(pid, "SIGTERM");
  await waitUntil("the old daemon to exit", () => {
    try {
      process.kill(pid, 0);
      return false;
    } catch {
      return true;
    }
  }, 90_000);
  start(argv);
  await waitUntil("docker info", engineAnswers, 90_000);
  return Date.now() - t0;
}

/** Makes sure a daemon answers: starts one (same arguments as the last restart, or plain dockerd) when none runs. */
export async function ensureDockerd(): Promise<void> {
  if (await engineAnswers()) return;
  if (daemonPid() === null) start(lastArgv ?? ["/usr/sbin/dockerd"]);
  await waitUntil("docker info", engineAnswers, 90_000);
}
