import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { NO_APP_CONFIG, type DeploySpec } from "../contract/spec";
import { DEFAULT_COMPOSE_BASE, escapeDollars, loadComposeBase, renderCompose, serializeCompose, shellCommand } from "./compose";

const spec: DeploySpec = {
  appId: "app-123",
  name: "sd-webui",
  repository: "https://github.com/example/sd-webui.git",
  startCommand: 'echo "${SOME_SECRET}" $HOME && python launch.py --port $PORT',
  installCommand: null,
  port: 7860,
  image: "nvcr.io/nvidia/pytorch:24.10-py3",
  gpuDevices: [],
  capAdd: [],
  keepPaths: [],
  ...NO_APP_CONFIG,
};

function render(overrides: Partial<DeploySpec> = {}) {
  const doc = renderCompose({ spec: { ...spec, ...overrides }, hostId: "host-1", workspace: "/opt/dockerstore/sd-webui", uid: 1000, gid: 1000, base: DEFAULT_COMPOSE_BASE });
  // Round-trip through the serialiser: what compose reads is what we check.
  const parsed = parse(serializeCompose(doc)) as { services: Record<string, Record<string, any>>; networks: Record<string, any>; version?: string };
  return { doc: parsed, service: parsed.services.app! };
}

describe("renderCompose: app configuration", () => {
  it("writes env values literally ($ escaped for compose), platform variables last", () => {
    const { service } = render({ env: { A: "$HOME x", COMMANDLINE_ARGS: "--api ${X}", PIP_CACHE_DIR: "/app/pip" } });
    expect(service.environment).toEqual({ PIP_CACHE_DIR: "/app/pip", A: "$$HOME x", COMMANDLINE_ARGS: "--api $${X}", HOME: "/app", PORT: "7860", USER: "app", LOGNAME: "app" });
  });

  it("sets the entrypoint (secrets loader, ~/.local/bin on PATH) and mounts the secrets folder read-only; no value is in the file", () => {
    const doc = renderCompose({ spec: { ...spec, secretNames: ["HF_TOKEN"] }, hostId: "h", workspace: "/w", uid: 1000, gid: 1000, base: DEFAULT_COMPOSE_BASE, secretsDir: "/state/compose/sd-webui/secrets" });
    const service = (parse(serializeCompose(doc)) as { services: Record<string, Record<string, any>> }).services.app!;
    expect(service.entrypoint[0]).toBe("/bin/sh");
    expect(service.entrypoint[2]).toContain("/run/dcc-secrets");
    expect(service.entrypoint[2]).toContain('PATH="$$HOME/.local/bin:');
    expect(service.entrypoint[2]).toContain('exec "$$@"');
    expect(service.volumes).toContainEqual({ type: "bind", source: "/state/compose/sd-webui/secrets", target: "/run/dcc-secrets", read_only: true });
    expect(serializeCompose(doc)).not.toContain("HF_TOKEN");
  });

  it("maps resources to mem_limit and cpus", () => {
    const { service } = render({ resources: { memoryMiB: 2048, cpus: 1.5 } });
    expect(service.mem_limit).toBe("2048m");
    expect(service.cpus).toBe(1.5);
  });
});

describe("renderCompose", () => {
  it("writes every $ in user text as $$ so compose interpolates nothing", () => {
    const { service } = render();
    expect(service.command).toEqual(["/bin/sh", "-c", 'echo "$${SOME_SECRET}" $$HOME && python launch.py --port $$PORT']);
    expect(JSON.stringify(service)).not.toMatch(/[^$]\$\{SOME_SECRET\}/);
  });

  it("sets image, /app bind only, working dir, numeric user, HOME and PORT only, published port", () => {
    const { doc, service } = render();
    expect(doc.version).toBeUndefined();
    expect(Object.keys(doc.services)).toEqual(["app"]);
    expect(service.image).toBe(spec.image);
    expect(service.volumes).toEqual([{ type: "bind", source: "/opt/dockerstore/sd-webui", target: "/app" }]);
    expect(service.working_dir).toBe("/app");
    expect(service.user).toBe("1000:1000");
    expect(service.environment).toEqual({ PIP_CACHE_DIR: "/app/.cache/pip", HOME: "/app", PORT: "7860", USER: "app", LOGNAME: "app" });
    expect(service.ports).toEqual(["7860:7860"]);
    expect(service.env_file).toBeUndefined();
  });

  it("labels the container and network with app, app id, host and managed", () => {
    const { doc, service } = render();
    const labels = { "dcc.app": "sd-webui", "dcc.app-id": "app-123", "dcc.host": "host-1", "dcc.managed": "true" };
    expect(service.labels).toEqual(labels);
    expect(doc.networks.default.labels).toEqual(labels);
  });

  it("keeps least privilege: cap_drop ALL, no-new-privileges, not privileged, no host namespaces, restart policy", () => {
    const { service } = render();
    expect(service.cap_drop).toEqual(["ALL"]);
    expect(service.cap_add).toBeUndefined();
    expect(service.security_opt).toContain("no-new-privileges:true");
    expect(service.privileged).toBe(false);
    expect(service.restart).toBe("unless-stopped");
    for (const key of ["network_mode", "pid", "ipc_mode", "devices", "userns_mode", "volumes_from"]) expect(service[key]).toBeUndefined();
    expect(service.ipc).toBe("private");
    expect(JSON.stringify(service)).not.toContain("docker.sock");
  });

  it("adds back only the capabilities the spec names", () => {
    expect(render({ capAdd: ["CHOWN", "SETUID"] }).service.cap_add).toEqual(["CHOWN", "SETUID"]);
  });

  it("reserves GPUs only when devices are assigned", () => {
    expect(render().service.deploy).toBeUndefined();
    expect(render({ gpuDevices: ["0", "2"] }).service.deploy).toEqual({
      resources: { reservations: { devices: [{ driver: "nvidia", device_ids: ["0", "2"], capabilities: ["gpu"] }] } },
    });
  });

  it("a GPU host's recorded inventory yields the reservation; a GPU-less host none", async () => {
    const { readFileSync } = await import("node:fs");
    const { parseGpuCsv } = await import("./nvidia");
    const gpus = parseGpuCsv(readFileSync(new URL("./fixtures/nvidia-smi-query-gpu-2xA100.txt", import.meta.url), "utf8"));
    const devices = gpus.map((g) => String(g.index));
    expect(render({ gpuDevices: devices }).service.deploy.resources.reservations.devices[0].device_ids).toEqual(["0", "1"]);
    expect(parseGpuCsv("")).toEqual([]);
    expect(render({ gpuDevices: parseGpuCsv("").map((g) => String(g.index)) }).service.deploy).toBeUndefined();
  });

  it("enforces least privilege even over a weaker base", () => {
    const weak = { service: { ...DEFAULT_COMPOSE_BASE.service, cap_drop: [], security_opt: [] }, network: {} };
    const doc = renderCompose({ spec, hostId: "h", workspace: "/w/x", uid: 1000, gid: 1000, base: weak }) as any;
    expect(doc.services.app.cap_drop).toEqual(["ALL"]);
    expect(doc.services.app.security_opt).toEqual(["no-new-privileges:true"]);
  });
});

describe("compose base template", () => {
  it("templates/compose-base.yaml and the built-in copy are identical", () => {
    const file = fileURLToPath(new URL("../../../templates/compose-base.yaml", import.meta.url));
    expect(parse(readFileSync(file, "utf8"))).toEqual(DEFAULT_COMPOSE_BASE);
    const loaded = loadComposeBase();
    expect(loaded.source).toBe(file);
    expect(loaded.base).toEqual(DEFAULT_COMPOSE_BASE);
  });

  it("refuses a base that tries to set what the agent owns", async () => {
    const { mkdtemp, writeFile } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const dir = await mkdtemp(`${tmpdir()}/dcc-base-`);
    await writeFile(`${dir}/a.yaml`, "service:\n  privileged: true\n");
    await writeFile(`${dir}/b.yaml`, "service:\n  volumes: ['/:/host']\n");
    expect(() => loadComposeBase(`${dir}/a.yaml`)).toThrow(/not valid/);
    expect(() => loadComposeBase(`${dir}/b.yaml`)).toThrow(/not valid/);
  });
});

describe("shellCommand / escapeDollars", () => {
  it("keeps sh from reading a leading - or + as its own option", () => {
    expect(shellCommand("-c rm")).toBe(" -c rm");
    expect(shellCommand("+x")).toBe(" +x");
    expect(shellCommand("python app.py")).toBe("python app.py");
  });

  it("escapes nested strings", () => {
    expect(escapeDollars({ a: ["$x", { b: "$$" }], n: 5 })).toEqual({ a: ["$$x", { b: "$$$$" }], n: 5 });
  });
});

describe("serializeCompose under YAML 1.1 (compose v1) and 1.2", () => {
  // Names that YAML 1.1 reads as booleans, null or numbers when left plain.
  const AMBIGUOUS = ["on", "off", "yes", "no", "y", "n", "true", "false", "null", "0123", "1e3", "0x1f", "0o17", "123", "1-2"];

  it.each(AMBIGUOUS)("an app named %s round-trips as the same string under both versions", (name) => {
    const doc = renderCompose({
      spec: { ...spec, name, startCommand: "yes\ton", installCommand: "no", image: "busybox:1", keepPaths: ["y"] },
      hostId: "1e3",
      workspace: `/opt/dockerstore/${name}`,
      uid: 1000,
      gid: 1000,
      base: DEFAULT_COMPOSE_BASE,
    });
    const text = serializeCompose(doc);
    const v11 = parse(text, { version: "1.1" });
    const v12 = parse(text, { version: "1.2" });
    expect(v11).toEqual(doc);
    expect(v12).toEqual(doc);
    expect(v11.services.app.labels["dcc.app"]).toBe(name);
    expect(v11.services.app.labels["dcc.host"]).toBe("1e3");
    expect(text).toContain(`dcc.app: "${name}"`);
  });

  it("still writes booleans and numbers as themselves", () => {
    const doc = renderCompose({ spec, hostId: "h", workspace: "/w", uid: 1000, gid: 1000, base: DEFAULT_COMPOSE_BASE });
    const v11 = parse(serializeCompose(doc), { version: "1.1" });
    expect(v11.services.app.init).toBe(true);
    expect(v11.services.app.privileged).toBe(false);
    expect(v11.services.app.pids_limit).toBe(4096);
  });
});

describe("renderCompose: shared model store", () => {
  function renderStore(overrides: Partial<DeploySpec>, modelsDir?: string) {
    const doc = renderCompose({ spec: { ...spec, ...overrides }, hostId: "host-1", workspace: "/opt/dockerstore/sd-webui", uid: 1000, gid: 1000, base: DEFAULT_COMPOSE_BASE, modelsDir });
    return (parse(serializeCompose(doc)) as { services: Record<string, Record<string, any>> }).services.app!;
  }

  it("mounts the store at /models and appends the template's flags", () => {
    const service = renderStore({ modelStore: { args: ["--ckpt-dir", "/models/Stable-diffusion", "--lora-dir", "/models/Lora"], config: null } }, "/opt/dockerstore/.models");
    expect(service.volumes).toEqual([
      { type: "bind", source: "/opt/dockerstore/sd-webui", target: "/app" },
      { type: "bind", source: "/opt/dockerstore/.models", target: "/models" },
    ]);
    expect(service.command[2]).toBe('echo "$${SOME_SECRET}" $$HOME && python launch.py --port $$PORT --ckpt-dir /models/Stable-diffusion --lora-dir /models/Lora');
  });

  it("leaves apps without sharedModels (or a host without a store) as they were", () => {
    expect(renderStore({ modelStore: null }, "/opt/dockerstore/.models").volumes).toHaveLength(1);
    expect(renderStore({ modelStore: { args: ["--x"], config: null } }).volumes).toHaveLength(1);
    const config = renderStore({ modelStore: { args: [], config: "comfyui" } }, "/m");
    expect(config.volumes).toHaveLength(2);
    expect(config.command[2]).toBe(render().service.command[2]);
  });
});
