// Docker helpers for integration tests: CLI runner, availability check, label-based listing/cleanup, inspect, and a generic poller.
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

/** Local image built by scripts/test-deps.sh (busybox-static rootfs; no default command). */
export const TEST_IMAGE = "dcc-test/busybox:1";

/** Loose shape of `docker inspect` output for a container; read what you need. */
export interface ContainerInspect {
  Id: string;
  Name: string;
  Image: string;
  State: { Status: string; Running: boolean; ExitCode: number; Pid: number; [key: string]: unknown };
  Config: { Image: string; Labels: Record<string, string> | null; Env: string[] | null; User: string; Cmd: string[] | null; [key: string]: unknown };
  HostConfig: { [key: string]: unknown };
  NetworkSettings: { Ports: Record<string, { HostIp: string; HostPort: string }[] | null> | null; [key: string]: unknown };
  Mounts: { Type: string; Source: string; Destination: string; [key: string]: unknown }[];
  [key: string]: unknown;
}

let cliPromise: Promise<string | null> | undefined;

/**
 * The docker CLI that reaches the engine. A Docker 28 CLI in /usr/local/bin may shadow Debian's
 * /usr/bin/docker, so the first candidate whose `docker info` succeeds wins.
 */
export function dockerCli(): Promise<string | null> {
  cliPromise ??= (async () => {
    for (const bin of ["docker", "/usr/bin/docker"]) {
      try {
        await execFileAsync(bin, ["info", "--format", "{{.ServerVersion}}"], { timeout: 15_000 });
        return bin;
      } catch {
        // try the next candidate
      }
    }
    return null;
  })();
  return cliPromise;
}

/** True when a Docker engine answers `docker info`. */
export async function dockerAvailable(): Promise<boolean> {
  return (await dockerCli()) !== null;
}

/** Run the docker CLI with an argument array; resolves trimmed stdout, rejects with stderr in the message. */
export async function docker(args: string[], opts: { timeoutMs?: number } = {}): Promise<string> {
  const bin = await dockerCli();
  if (bin === null) throw new Error("docker engine not available (run scripts/test-deps.sh)");
  try {
    const { stdout } = await execFileAsync(bin, args, { timeout: opts.timeoutMs ?? 60_000, maxBuffer: 32 * 1024 * 1024 });
    return stdout.trim();
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`docker ${args.join(" ")} failed: ${e.stderr?.trim() || e.message}`);
  }
}

const lines = (s: string): string[] => s.split("\n").map((l) => l.trim()).filter(Boolean);

/** Ids of containers (running or not) matching label filter `label` ("key" or "key=value"). */
export async function listByLabel(label: string): Promise<string[]> {
  return lines(await docker(["ps", "-a", "-q", "--no-trunc", "--filter", `label=${label}`]));
}

/** Force-remove containers, then networks and volumes, carrying label filter `label`. */
export async function removeByLabel(label: string): Promise<void> {
  const filter = `label=${label}`;
  const containers = await listByLabel(label);
  if (containers.length) await docker(["rm", "-f", "-v", ...containers]);
  const networks = lines(await docker(["network", "ls", "-q", "--filter", filter]));
  if (networks.length) await docker(["network", "rm", ...networks]);
  const volumes = lines(await docker(["volume", "ls", "-q", "--filter", filter]));
  if (volumes.length) await docker(["volume", "rm", "-f", ...volumes]);
}

/** Parsed `docker inspect` of one container. */
export async function inspect(containerIdOrName: string): Promise<ContainerInspect> {
  const [info] = JSON.parse(await docker(["inspect", "--type", "container", containerIdOrName])) as ContainerInspect[];
  if (!info) throw new Error(`docker inspect ${containerIdOrName}: no result`);
  return info;
}

/**
 * Poll `fn` until it returns a truthy value and resolve with it. Throws from `fn` count as "not yet";
 * after `timeoutMs` it rejects, quoting the last error.
 */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  { timeoutMs = 10_000, intervalMs = 100, message = "condition" }: { timeoutMs?: number; intervalMs?: number; message?: string } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why = lastError instanceof Error ? `: ${lastError.message}` : "";
      throw new Error(`waitFor(${message}) timed out after ${timeoutMs} ms${why}`);
    }
    await new Promise((r) => setTimeout(r, Math.min(intervalMs, Math.max(0, deadline - Date.now()))));
  }
}
