import { access, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ParamsValidationError } from "./errors";
import { AppManager } from "./manager";

const validSpec = {
  appId: "a1",
  name: "web",
  repository: "https://example.com/x/web.git",
  startCommand: "python app.py",
  installCommand: null,
  port: 8080,
  image: "dcc-test/busybox:1",
  gpuDevices: [],
  capAdd: [],
  keepPaths: [],
};

describe("AppManager.apply validation", () => {
  it.each([
    ["provision", {}, "spec"],
    ["provision", { spec: { ...validSpec, port: "8080" } }, "spec.port"],
    ["provision", { spec: { ...validSpec, repository: "http://169.254.169.254/x" } }, "spec.repository"],
    ["provision", { spec: { ...validSpec, startCommand: "a\nb" } }, "spec.startCommand"],
    ["provision", { spec: { ...validSpec, extra: 1 } }, "spec.extra"],
    ["provision", { spec: { ...validSpec, name: "other" } }, "spec.name"],
    ["start", { force: true }, "force"],
    ["reinstall", { spec: validSpec, clean: "yes" }, "clean"],
  ])("%s with bad parameters throws a validation error and touches nothing", async (action, params, field) => {
    const base = await mkdtemp(join(tmpdir(), "dcc-mgr-"));
    const manager = new AppManager({ workspaceRoot: join(base, "root"), stateDir: join(base, "state"), hostId: "h", allowInsecureGit: false, log: () => {} });
    const err = await manager.apply("web", action as "provision", params).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ParamsValidationError);
    expect(Object.keys((err as ParamsValidationError).fields)).toContain(field);
    await expect(access(join(base, "state"))).rejects.toThrow();
    await expect(access(join(base, "root"))).rejects.toThrow();
  });

  it("refuses an unknown action and a bad app name", async () => {
    const manager = new AppManager({ workspaceRoot: "/nonexistent/r", stateDir: "/nonexistent/s", hostId: "h", allowInsecureGit: false, log: () => {} });
    await expect(manager.apply("web", "explode" as "start", {})).rejects.toBeInstanceOf(ParamsValidationError);
    await expect(manager.apply("../etc", "start", {})).rejects.toBeInstanceOf(ParamsValidationError);
  });
});
