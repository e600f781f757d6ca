// The containers port: the few Docker Engine calls the actions, the install runner and the
// observer make (find an app's container, inspect, remove, logs, stats, pull, wait, kill), behind
// a narrow interface like GitOps and ComposeOps. DockerContainers is the real one (Dockerode).
import type Dockerode from "dockerode";
import type { LogLine } from "../contract/reports";
import { OpsError, checkAborted, errorMessage } from "./errors";
import { LogDemuxer, streamLogs, type LogRequest } from "./logs";
import type { PullEvent } from "./pull-progress";
import { registryOf } from "../contract/app-config";
import { commandRegistryCredential } from "./command-context";
import type { ContainerSnapshot } from "./status";
import type { DockerStats } from "./usage";

export interface AppContainer {
  id: string;
  snapshot: ContainerSnapshot;
}

export interface ContainerOps {
  /** The app's service container (newest, one-off containers excluded), inspected; null when none. */
  findApp(app: string): Promise<AppContainer | null>;
  /** Every container and network labelled for the app on this host, removed. */
  removeApp(app: string): Promise<void>;
  /** Removes one container by id or name (force, volumes); a missing one is fine. */
  remove(idOrName: string): Promise<void>;
  kill(idOrName: string): Promise<void>;
  /** Stops a running container through the Engine API (SIGTERM, SIGKILL after `graceSeconds`); a stopped or missing one is fine. */
  stop(idOrName: string, graceSeconds: number, signal?: AbortSignal): Promise<void>;
  /** Resolves with the exit code once the container stops. */
  wait(idOrName: string): Promise<number>;
  logs(idOrName: string, app: string, req: LogRequest, onLine: (line: LogLine) => void, signal?: AbortSignal): Promise<void>;
  /** The last `count` output lines (a courtesy: empty when they cannot be read). */
  lastLines(idOrName: string, count: number): Promise<string[]>;
  stats(id: string): Promise<DockerStats>;
  /** The container's live raw output (not line-buffered, so `\r` redraws arrive as they happen) until it ends or `signal` aborts. */
  attach?(id: string, onData: (stream: "stdout" | "stderr", data: Buffer) => void, signal: AbortSignal): Promise<void>;
  hasImage(image: string): Promise<boolean>;
  /** Pulls the image; each stream event goes to `onEvent`; aborting `signal` ends the pull stream. */
  pull(image: string, signal?: AbortSignal, onEvent?: (e: PullEvent) => void): Promise<void>;
}

const statusOf = (err: unknown) => (err as { statusCode?: number }).statusCode;

export class DockerContainers implements ContainerOps {
  constructor(
    private readonly docker: Dockerode,
    private readonly hostId: string,
  ) {}

  private labels(app: string): string[] {
    return [`dcc.app=${app}`, `dcc.host=${this.hostId}`, "dcc.managed=true"];
  }

  async findApp(app: string): Promise<AppContainer | null> {
    const list = await this.docker.listContainers({ all: true, filters: { label: this.labels(app) } });
    const mine = list.filter((c) => c.Labels?.["com.docker.compose.oneoff"] !== "True").sort((a, b) => b.Created - a.Created)[0];
    if (!mine) return null;
    try {
      const info = await this.docker.getContainer(mine.Id).inspect();
      const started = Date.parse(info.State.StartedAt);
      return {
        id: mine.Id,
        snapshot: { state: info.State.Status, exitCode: info.State.ExitCode, startedAt: Number.isNaN(started) ? undefined : started },
      };
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw err;
    }
  }

  async removeApp(app: string): Promise<void> {
    const filters = { label: this.labels(app) };
    for (const c of await this.docker.listContainers({ all: true, filters })) await this.remove(c.Id);
    for (const n of await this.docker.listNetworks({ filters })) {
      await this.docker.getNetwork(n.Id).remove().catch((err: unknown) => {
        if (statusOf(err) !== 404) throw err;
      });
    }
  }

  async remove(idOrName: string): Promise<void> {
    try {
      await this.docker.getContainer(idOrName).remove({ force: true, v: true });
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
  }

  async kill(idOrName: string): Promise<void> {
    await this.docker.getContainer(idOrName).kill().catch(() => {});
  }

  async stop(idOrName: string, graceSeconds: number, signal?: AbortSignal): Promise<void> {
    checkAborted(signal);
    try {
      await this.docker.getContainer(idOrName).stop({ t: graceSeconds, ...(signal ? { abortSignal: signal } : {}) });
    } catch (err) {
      checkAborted(signal);
      if (statusOf(err) !== 304 && statusOf(err) !== 404) throw err;
    }
  }

  async wait(idOrName: string): Promise<number> {
    return ((await this.docker.getContainer(idOrName).wait()) as { StatusCode: number }).StatusCode;
  }

  logs(idOrName: string, app: string, req: LogRequest, onLine: (line: LogLine) => void, signal?: AbortSignal): Promise<void> {
    return streamLogs(this.docker, idOrName, app, req, onLine, signal);
  }

  async lastLines(idOrName: string, count: number): Promise<string[]> {
    const lines: string[] = [];
    try {
      await streamLogs(this.docker, idOrName, "x", { tail: count, follow: false }, (l) => lines.push(l.line.slice(0, 400)));
    } catch {
      // logs are a courtesy; the exit code is the fact
    }
    return lines;
  }

  async stats(id: string): Promise<DockerStats> {
    return (await this.docker.getContainer(id).stats({ stream: false })) as unknown as DockerStats;
  }

  async attach(id: string, onData: (stream: "stdout" | "stderr", data: Buffer) => void, signal: AbortSignal): Promise<void> {
    // Docker's log driver holds output until a newline; an attach stream is the raw output.
    const stream = (await this.docker.getContainer(id).attach({ stream: true, stdout: true, stderr: true, logs: false })) as NodeJS.ReadableStream & { destroy?: () => void };
    const demux = new LogDemuxer();
    await new Promise<void>((resolve) => {
      const done = () => resolve();
      if (signal.aborted) {
        stream.destroy?.();
        return done();
      }
      signal.addEventListener("abort", () => {
        stream.destroy?.();
        done();
      }, { once: true });
      stream.on("data", (chunk: Buffer) => demux.push(chunk, onData));
      stream.on("end", done);
      stream.on("close", done);
      stream.on("error", done);
    });
  }

  async hasImage(image: string): Promise<boolean> {
    try {
      await this.docker.getImage(image).inspect();
      return true;
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw new OpsError("FAILED", `Docker did not answer: ${errorMessage(err)}`);
    }
  }

  async pull(image: string, signal?: AbortSignal, onEvent?: (e: PullEvent) => void): Promise<void> {
    checkAborted(signal);
    // The engine answers the pull request only once it reached the registry: the signal ends the request too.
    // A private image: the registry login the command carries goes to the engine with this pull only.
    const login = commandRegistryCredential(registryOf(image));
    const auth = login ? { authconfig: { username: login.username, password: login.password, serveraddress: login.host } } : {};
    const request = this.docker.pull(image, { ...auth, ...(signal ? { abortSignal: signal } : {}) }) as Promise<NodeJS.ReadableStream & { destroy?: (e?: Error) => void }>;
    const stream = await untilAborted(request, signal);
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        stream.destroy?.();
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.docker.modem.followProgress(
        stream,
        (err: Error | null) => {
          signal?.removeEventListener("abort", onAbort);
          if (err) reject(err);
          else resolve();
        },
        (event: PullEvent) => {
          try {
            onEvent?.(event);
          } catch (err) {
            // an error event: the pull failed, whatever the stream says next
            stream.destroy?.();
            reject(err);
          }
        },
      );
    });
    checkAborted(signal);
  }
}

function untilAborted<T>(task: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return task;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    task.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
