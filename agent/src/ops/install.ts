// The install runner: an app's install command runs once per deploy in a one-off container of the
// same service (same image, /app, user and least-privilege settings) before the app's container
// is (re)created. Its output streams back as `install` progress; a cancel, a deadline or the
// install time limit kills the container.
import type { Progress } from "../contract/reports";
import type { DeploySpec } from "../contract/spec";
import { composeFailure, shellCommand, type ComposeOps, type ComposeProject } from "./compose";
import type { ContainerOps } from "./containers";
import { OpsError, checkAborted, formatDuration } from "./errors";

const OUTPUT_LINE_MAX = 4000;
const OUTPUT_BATCH = 50;
const TAIL_LINES = 15;

export interface InstallRunnerOptions {
  compose: ComposeOps;
  containers: ContainerOps;
  /** Longest an install command may run; default 60 min. */
  timeoutMs?: number;
}

export class InstallRunner {
  constructor(private readonly o: InstallRunnerOptions) {}

  async run(spec: DeploySpec, project: ComposeProject, progress: (p: Progress) => void, signal?: AbortSignal): Promise<void> {
    if (!spec.installCommand) return;
    checkAborted(signal);
    progress({ step: "install", message: "running the install command" });
    const { containers } = this.o;
    const name = `${spec.name}-install`;
    await containers.remove(name);
    try {
      await this.o.compose.runDetached(project, name, ["/bin/sh", "-c", shellCommand(spec.installCommand)], { signal });
    } catch (err) {
      await containers.remove(name);
      checkAborted(signal);
      throw composeFailure(err, spec);
    }
    const tail: string[] = [];
    let batch: string[] = [];
    const flush = () => {
      if (batch.length) progress({ step: "install", output: batch });
      batch = [];
    };
    const timer = setInterval(flush, 500);
    const stopLogs = new AbortController();
    const logs = containers
      .logs(name, spec.name, { tail: 10_000, follow: true }, (line) => {
        const text = line.line.slice(0, OUTPUT_LINE_MAX);
        batch.push(text);
        tail.push(text);
        if (tail.length > TAIL_LINES) tail.shift();
        if (batch.length >= OUTPUT_BATCH) flush();
      }, stopLogs.signal)
      .catch(() => {});
    let timedOut = false;
    const kill = () => void containers.kill(name);
    const timeout = setTimeout(() => {
      timedOut = true;
      kill();
    }, this.o.timeoutMs ?? 3_600_000);
    signal?.addEventListener("abort", kill, { once: true });
    if (signal?.aborted) kill();
    let exitCode: number;
    try {
      exitCode = await containers.wait(name);
      await Promise.race([logs, new Promise((r) => setTimeout(r, 2000))]);
    } finally {
      clearTimeout(timeout);
      signal?.removeEventListener("abort", kill);
      stopLogs.abort();
      clearInterval(timer);
      flush();
      await containers.remove(name);
    }
    checkAborted(signal);
    if (timedOut) throw new OpsError("FAILED", `the install command ran longer than ${formatDuration(this.o.timeoutMs ?? 3_600_000)} and was stopped`);
    if (exitCode !== 0) {
      throw new OpsError("FAILED", `the install command exited with code ${exitCode}${tail.length ? `; last output:\n${tail.join("\n")}` : ""}`);
    }
    progress({ step: "install", message: "install command finished" });
  }
}
