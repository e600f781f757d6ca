// A real container registry on loopback for pull tests: Debian's `docker-registry` (distribution
// 2.8, installed by scripts/test-deps.sh) with its own storage folder. Docker trusts 127.0.0.0/8
// registries over plain HTTP, so the engine pulls from it as from any registry. `pushImage` builds
// a multi-layer image from the test image (each layer a file of random, incompressible bytes, so a
// layer's download is as big as its file), pushes it and removes it locally: the next pull of it
// downloads every new layer.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { promisify } from "node:util";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TEST_IMAGE, docker } from "./docker";
import { freePort } from "./net";

const execFileAsync = promisify(execFile);

export interface Registry {
  /** `127.0.0.1:<port>` */
  host: string;
  /** Builds, pushes and removes locally an image of `layers` layers of `layerBytes` each; answers its reference. */
  pushImage(name: string, opts?: { layers?: number; layerBytes?: number }): Promise<string>;
  close(): Promise<void>;
}

export interface RegistryOptions {
  /** Require this login (htpasswd, bcrypt) for every request, as a private registry does. */
  auth?: { username: string; password: string };
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<Registry> {
  const dir = await mkdtemp(join(tmpdir(), "dcc-registry-"));
  // A client config of its own, so a test login never touches the user's ~/.docker.
  const cli = opts.auth ? ["--config", join(dir, "docker-cli")] : [];
  if (opts.auth) {
    const { stdout } = await execFileAsync("htpasswd", ["-Bbn", opts.auth.username, opts.auth.password]);
    await writeFile(join(dir, "htpasswd"), stdout);
  }
  const port = await freePort();
  const config = join(dir, "config.yml");
  await writeFile(
    config,
    [
      "version: 0.1",
      "log:",
      "  level: error",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${join(dir, "data")}`,
      "  delete:",
      "    enabled: true",
      "http:",
      `  addr: 127.0.0.1:${port}`,
      ...(opts.auth ? ["auth:", "  htpasswd:", "    realm: dcc-test", `    path: ${join(dir, "htpasswd")}`] : []),
      "",
    ].join("\n"),
  );
  const proc: ChildProcess = spawn("docker-registry", ["serve", config], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout!.on("data", (d) => (out += d));
  proc.stderr!.on("data", (d) => (out += d));
  const host = `127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (proc.exitCode !== null) throw new Error(`docker-registry exited: ${out}`);
    try {
      const r = await fetch(`http://${host}/v2/`);
      if (r.ok || (opts.auth && r.status === 401)) break;
    } catch {
      // not listening yet
    }
    if (i > 100) throw new Error(`docker-registry did not answer within 10 s: ${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const pushed: string[] = [];
  return {
    host,
    async pushImage(name, { layers = 3, layerBytes = 8_000_000 } = {}) {
      const ctx = await mkdtemp(join(tmpdir(), "dcc-image-"));
      try {
        const lines = [`FROM ${TEST_IMAGE}`];
        for (let i = 0; i < layers; i++) {
          await writeFile(join(ctx, `layer${i}.bin`), randomBytes(layerBytes));
          lines.push(`COPY layer${i}.bin /data/layer${i}.bin`);
        }
        await writeFile(join(ctx, "Dockerfile"), `${lines.join("\n")}\n`);
        const ref = `${host}/dcc-test/${name}:1`;
        await docker(["build", "-q", "-t", ref, ctx], { timeoutMs: 180_000 });
        if (opts.auth) await docker([...cli, "login", "-u", opts.auth.username, "-p", opts.auth.password, host], { timeoutMs: 60_000 });
        await docker([...cli, "push", ref], { timeoutMs: 180_000 });
        await docker(["rmi", "-f", ref], { timeoutMs: 60_000 });
        pushed.push(ref);
        return ref;
      } finally {
        await rm(ctx, { recursive: true, force: true });
      }
    },
    async close() {
      for (const ref of pushed) await docker(["rmi", "-f", ref]).catch(() => {});
      proc.kill("SIGTERM");
      await rm(dir, { recursive: true, force: true });
    },
  };
}
