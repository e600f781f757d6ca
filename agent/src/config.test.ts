import { describe, expect, it } from "vitest";
import { AgentConfigError, loadAgentConfig, normalizeConsoleUrl } from "./config";

describe("console URL", () => {
  it.each([
    ["https://console.example.com", "wss://console.example.com/agent"],
    ["wss://console.example.com/agent", "wss://console.example.com/agent"],
    ["http://127.0.0.1:3000", "ws://127.0.0.1:3000/agent"],
    ["ws://localhost:3000/agent", "ws://localhost:3000/agent"],
    ["ws://[::1]:3000", "ws://[::1]:3000/agent"],
  ])("%s → %s", (raw, url) => expect(normalizeConsoleUrl(raw, false)).toBe(url));

  it("refuses plain ws:// to a non-loopback console unless allowed", () => {
    expect(() => normalizeConsoleUrl("ws://10.0.0.5:3000", false)).toThrow(AgentConfigError);
    expect(() => normalizeConsoleUrl("http://console.example.com", false)).toThrow(/only allowed to loopback/);
    expect(normalizeConsoleUrl("ws://10.0.0.5:3000", true)).toBe("ws://10.0.0.5:3000/agent");
  });

  it.each(["ftp://x", "https://user:pw@console.example.com", "https://c.example.com/?a=1", "not a url"])("refuses %s", (raw) => {
    expect(() => normalizeConsoleUrl(raw, true)).toThrow(AgentConfigError);
  });
});

describe("loadAgentConfig", () => {
  it("reads flags before the environment, with the documented defaults", () => {
    const c = loadAgentConfig(["--console", "https://c.example.com", "--state-dir", "/tmp/s"], {
      DCC_CONSOLE_URL: "https://ignored.example.com",
      DCC_ENROLL_TOKEN: "dcce_tokentokentoken",
      DCC_ALLOW_INSECURE_GIT: "on",
    });
    expect(c).toMatchObject({
      consoleUrl: "wss://c.example.com/agent",
      enrollToken: "dcce_tokentokentoken",
      stateDir: "/tmp/s",
      workspaceRoot: "/opt/dockerstore",
      allowInsecureGit: true,
      allowInsecureWs: false,
    });
  });

  it("refuses unknown flags, a missing console and bad switches", () => {
    expect(() => loadAgentConfig(["--console", "https://c.example.com", "--rm-rf"], {})).toThrow();
    expect(() => loadAgentConfig([], {})).toThrow(/--console/);
    expect(() => loadAgentConfig(["--console", "https://c.example.com"], { DCC_ALLOW_INSECURE_WS: "maybe" })).toThrow(/DCC_ALLOW_INSECURE_WS/);
    expect(() => loadAgentConfig(["--console", "https://c.example.com", "--health-port", "99999"], {})).toThrow(/health-port/);
  });
});

describe("state dir and workspace root", () => {
  it("must not contain one another (a container mounts <root>/<app>)", () => {
    const base = ["--console", "https://c.example.com"];
    expect(() => loadAgentConfig([...base, "--state-dir", "/srv/a", "--workspace-root", "/srv/a/ws"], {})).toThrow(/must not contain/);
    expect(() => loadAgentConfig([...base, "--state-dir", "/srv/ws/agent", "--workspace-root", "/srv/ws"], {})).toThrow(/must not contain/);
    expect(loadAgentConfig([...base, "--state-dir", "/srv/agent", "--workspace-root", "/srv/ws"], {}).workspaceRoot).toBe("/srv/ws");
  });
});

describe("git and pull time limits", () => {
  const base = ["--console", "https://c.example.com", "--state-dir", "/tmp/s"];
  it("default to 1 h for clones and 2 h for pulls, and read DCC_CLONE_TIMEOUT_S / DCC_PULL_TIMEOUT_S", () => {
    expect(loadAgentConfig(base, {})).toMatchObject({ cloneTimeoutS: 3600, pullTimeoutS: 7200 });
    expect(loadAgentConfig(base, { DCC_CLONE_TIMEOUT_S: "90", DCC_PULL_TIMEOUT_S: "14400" })).toMatchObject({ cloneTimeoutS: 90, pullTimeoutS: 14400 });
  });
  it.each(["0", "-5", "1.5", "soon", "1e3"])("refuses %s", (v) => {
    expect(() => loadAgentConfig(base, { DCC_CLONE_TIMEOUT_S: v })).toThrow(/DCC_CLONE_TIMEOUT_S/);
    expect(() => loadAgentConfig(base, { DCC_PULL_TIMEOUT_S: v })).toThrow(/DCC_PULL_TIMEOUT_S/);
  });
});

describe("shared model store location", () => {
  const base = ["--console", "https://console.example.com", "--state-dir", "/var/lib/dcc-state", "--workspace-root", "/srv/apps"];
  it("defaults to <workspace root>/.models, DCC_MODELS_DIR overrides, never over the state dir", () => {
    expect(loadAgentConfig(base, {}).modelsDir).toBe("/srv/apps/.models");
    expect(loadAgentConfig(base, { DCC_MODELS_DIR: "/data/models" }).modelsDir).toBe("/data/models");
    expect(() => loadAgentConfig(base, { DCC_MODELS_DIR: "/var/lib" })).toThrow(/DCC_MODELS_DIR and --state-dir/);
  });
});

describe("the user app containers run as", () => {
  const base = ["--console", "https://console.example.com", "--state-dir", "/var/lib/dcc-state", "--workspace-root", "/srv/apps"];
  it("is DCC_APP_UID/DCC_APP_GID when both are set, never root, never one without the other", () => {
    expect(loadAgentConfig(base, {}).appUser).toBeUndefined();
    expect(loadAgentConfig(base, { DCC_APP_UID: "998", DCC_APP_GID: "997" }).appUser).toEqual({ uid: 998, gid: 997 });
    for (const env of [{ DCC_APP_UID: "0", DCC_APP_GID: "997" }, { DCC_APP_UID: "998" }, { DCC_APP_GID: "997" }, { DCC_APP_UID: "-1", DCC_APP_GID: "1" }, { DCC_APP_UID: "1e3", DCC_APP_GID: "1" }, { DCC_APP_UID: "4294967295", DCC_APP_GID: "1" }]) {
      expect(() => loadAgentConfig(base, env), JSON.stringify(env)).toThrow(AgentConfigError);
    }
  });
});
