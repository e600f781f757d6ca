// The by-hand half of the deploy benchmarks (scripts/bench-deploy.mjs, scripts/bench-deploy-console.mjs):
// what an operator would type to run a repository on the busybox image without this product —
// a shallow clone over smart HTTP, a minimal compose file, `docker-compose up -d`, then a probe
// loop until the port serves the repository's page. Plain Node; no TypeScript needed.
import { execFile } from "node:child_process";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { promisify } from "node:util";
import { stringify } from "yaml";

const execFileAsync = promisify(execFile);

/** How often the probe loops (by hand and through the product) ask the port. */
export const PROBE_MS = 20;
/** Each probe gives up after this long. */
export const PROBE_TIMEOUT_MS = 1000;

const gitEnv = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: tmpdir(), GIT_TERMINAL_PROMPT: "0", GIT_CONFIG_NOSYSTEM: "1" };
const composeEnv = { PATH: gitEnv.PATH, HOME: gitEnv.HOME };

/**
 * Resolves once http://127.0.0.1:<port>/index.html answers 200 with `expected` in its body.
 * Start it only once the container has been started: a connection to a published port while the
 * container is still being set up hangs in Docker's userland proxy, and makes every connection
 * after it wait about a second too (measured here: served ~0.9 s after the first early probe
 * instead of at once), which would time the probe, not the deploy.
 */
export async function untilServed(port, expected) {
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/index.html`, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
      if (res.ok && (await res.text()).includes(expected)) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, PROBE_MS));
  }
}

/**
 * One deploy by hand; resolves with its milliseconds (clone → served). The containers carry the
 * label `dcc.bench=<label>` and are taken down (not timed) before it resolves.
 * `o`: { repoUrl, expected, image, port, dir, label, project }
 */
export async function deployByHand(o) {
  const work = join(o.dir, "ws");
  await mkdir(o.dir, { recursive: true });
  const file = join(o.dir, "docker-compose.yml");
  const t0 = performance.now();
  await execFileAsync("git", ["clone", "-q", "--depth", "1", o.repoUrl, work], { env: gitEnv });
  const doc = {
    services: {
      app: {
        image: o.image,
        command: ["/bin/sh", "-c", "httpd -f -p $$PORT -h /app"],
        environment: { PORT: String(o.port) },
        ports: [`${o.port}:${o.port}`],
        volumes: [{ type: "bind", source: work, target: "/app" }],
        labels: { "dcc.bench": o.label },
      },
    },
  };
  await writeFile(file, stringify(doc));
  await execFileAsync("docker-compose", ["-p", o.project, "-f", file, "up", "-d"], { env: composeEnv });
  await untilServed(o.port, o.expected);
  const ms = performance.now() - t0;
  await execFileAsync("docker-compose", ["-p", o.project, "-f", file, "down", "--remove-orphans"], { env: composeEnv });
  await rm(o.dir, { recursive: true, force: true });
  return ms;
}
