import { ExecError, exec } from "./exec";

describe("exec", () => {
  it("passes arguments verbatim, never through a shell, with only the given environment", async () => {
    process.env.DCC_EXEC_TEST_SECRET = "leak";
    const r = await exec(["/bin/sh", "-c", 'printf "%s|%s" "$1" "${DCC_EXEC_TEST_SECRET:-none}"', "sh", "$(id); `id` ; $HOME"], { env: { PATH: "/usr/bin:/bin" } });
    expect(r.stdout).toBe("$(id); `id` ; $HOME|none");
    delete process.env.DCC_EXEC_TEST_SECRET;
  });

  it("throws ExecError with command, exit code and output", async () => {
    const err = await exec(["/bin/sh", "-c", "echo out; echo err >&2; exit 7"], { env: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExecError);
    const e = err as ExecError;
    expect(e.command).toEqual(["/bin/sh", "-c", "echo out; echo err >&2; exit 7"]);
    expect(e.exitCode).toBe(7);
    expect(e.output).toBe("err\nout");
  });

  it("reports a missing binary and a timeout", async () => {
    await expect(exec(["/nonexistent/bin"], { env: {} })).rejects.toThrow(/could not start/);
    await expect(exec(["/bin/sleep", "5"], { env: {}, timeoutMs: 100 })).rejects.toThrow(/timed out/);
  });

  it("streams lines", async () => {
    const lines: string[] = [];
    await exec(["/bin/sh", "-c", "echo a; echo b >&2; printf c"], { env: {}, onLine: (l, s) => lines.push(`${s}:${l}`) });
    expect(lines.sort()).toEqual(["stderr:b", "stdout:a", "stdout:c"]);
  });

  it("an abort stops the child and everything it started (its own process group)", async () => {
    const marker = `dcc-exec-abort-${process.pid}-${Date.now()}`;
    const abort = new AbortController();
    // the grandchild (an inner shell running sleep) is what a plain kill of the child would leave behind
    const run = exec(["/bin/sh", "-c", `sh -c "sleep 300; echo ${marker}" & wait`], { env: { PATH: "/usr/bin:/bin" }, signal: abort.signal }).catch((e: unknown) => e);
    const running = async () => (await exec(["/bin/ps", "-eo", "args"], { env: {} })).stdout.split("\n").filter((l) => l.startsWith("sh -c sleep 300") && l.includes(marker));
    for (let i = 0; i < 50 && (await running()).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await running()).toHaveLength(1);
    abort.abort();
    const err = (await run) as ExecError;
    expect(err).toBeInstanceOf(ExecError);
    expect(err.message).toMatch(/was aborted/);
    for (let i = 0; i < 50 && (await running()).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await running()).toEqual([]);
    await expect(exec(["/bin/true"], { env: {}, signal: abort.signal })).rejects.toThrow(/not started: aborted/);
  });
});

