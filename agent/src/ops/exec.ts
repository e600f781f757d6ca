// The one way the agent starts a process: an argv array (never a shell string), an explicit
// environment, and a typed error that carries the command, its exit code and its output.
import { spawn } from "node:child_process";

export interface ExecOptions {
  /** The complete environment of the child; nothing of the agent's own is inherited. */
  env: Record<string, string>;
  cwd?: string;
  timeoutMs?: number;
  /** Called with each complete output line as it arrives (stdout and stderr). */
  onLine?: (line: string, stream: "stdout" | "stderr") => void;
  /** Aborting stops the child: SIGTERM (compose forwards it to what it started), SIGKILL 3 s later. */
  signal?: AbortSignal;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export class ExecError extends Error {
  readonly command: string[];
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** stderr and stdout together, trimmed: what a person reading the error needs. */
  readonly output: string;

  constructor(command: string[], exitCode: number | null, stdout: string, stderr: string, why?: string) {
    const output = [stderr.trim(), stdout.trim()].filter(Boolean).join("\n");
    const status = why ?? (exitCode === null ? "was killed" : `exited with code ${exitCode}`);
    super(`${command.join(" ")} ${status}${output ? `: ${tail(output, 1500)}` : ""}`);
    this.name = "ExecError";
    this.command = command;
    this.exitCode = exitCode;
    this.stdout = stdout;
    this.stderr = stderr;
    this.output = output;
  }
}

function tail(text: string, max: number): string {
  return text.length <= max ? text : `…${text.slice(text.length - max)}`;
}

const MAX_BUFFER = 4 * 1024 * 1024;

export type Exec = (command: string[], options: ExecOptions) => Promise<ExecResult>;

/** Runs `command[0]` with `command.slice(1)` as arguments; rejects with ExecError unless it exits 0. */
export const exec: Exec = (command, options) =>
  new Promise((resolve, reject) => {
    const [file, ...args] = command;
    if (!file) {
      reject(new ExecError(command, null, "", "", "is empty"));
      return;
    }
    if (options.signal?.aborted) {
      reject(new ExecError(command, null, "", "", "was not started: aborted"));
      return;
    }
    const child = spawn(file, args, {
      env: options.env as NodeJS.ProcessEnv, // complete by design; Remix types NODE_ENV as required
      cwd: options.cwd,
      shell: false,
      stdio: ["ignore", "pipe", "pipe"],
      // Its own process group: a kill reaches what it started too (git's remote helper, say).
      detached: true,
    });
    const kill = (signal: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal);
        else child.kill(signal);
      } catch {
        child.kill(signal);
      }
    };
    const out = { stdout: "", stderr: "" };
    const partial = { stdout: "", stderr: "" };
    let timedOut = false;
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            kill("SIGKILL");
          }, options.timeoutMs);

    let aborted = false;
    let killTimer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      aborted = true;
      kill("SIGTERM");
      killTimer = setTimeout(() => kill("SIGKILL"), 3000);
      killTimer.unref?.();
    };
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const done = () => {
      if (timer) clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      options.signal?.removeEventListener("abort", onAbort);
    };

    const collect = (stream: "stdout" | "stderr") => (chunk: Buffer) => {
      const text = chunk.toString("utf8");
      if (out[stream].length < MAX_BUFFER) out[stream] += text;
      if (!options.onLine) return;
      const lines = (partial[stream] + text).split(/\r?\n|\r/);
      partial[stream] = lines.pop() ?? "";
      for (const line of lines) options.onLine(line, stream);
    };
    child.stdout.on("data", collect("stdout"));
    child.stderr.on("data", collect("stderr"));

    child.on("error", (err) => {
      done();
      reject(new ExecError(command, null, out.stdout, out.stderr, `could not start (${err.message})`));
    });
    child.on("close", (code) => {
      done();
      if (options.onLine) {
        for (const stream of ["stdout", "stderr"] as const) if (partial[stream]) options.onLine(partial[stream], stream);
      }
      if (aborted) reject(new ExecError(command, code, out.stdout, out.stderr, "was aborted"));
      else if (timedOut) reject(new ExecError(command, code, out.stdout, out.stderr, `timed out after ${options.timeoutMs} ms`));
      else if (code === 0) resolve({ ...out, exitCode: 0 });
      else reject(new ExecError(command, code, out.stdout, out.stderr));
    });
  });
