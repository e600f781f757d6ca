// The agent's configuration from flags, then environment, then defaults; validated once.
import { accessSync, constants, mkdirSync } from "node:fs";
import { isIP } from "node:net";
import { homedir } from "node:os";
import { isAbsolute, join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { GATEWAY_TLS_MODES, GatewayDomainSchema, type GatewayTlsMode } from "./contract/gateway";

export interface AgentConfig {
  /** The console's agent endpoint, always ws:// or wss:// ending in the path (default /agent). */
  consoleUrl: string;
  enrollToken?: string;
  consoleFingerprint?: string;
  name?: string;
  stateDir: string;
  workspaceRoot: string;
  caFile?: string;
  allowInsecureWs: boolean;
  allowInsecureGit: boolean;
  baseImage?: string;
  healthPort?: number;
  /** Longest a git clone or fetch may take (DCC_CLONE_TIMEOUT_S, default 3600 s). */
  cloneTimeoutS: number;
  /** Longest an image pull may take (DCC_PULL_TIMEOUT_S, default 7200 s). */
  pullTimeoutS: number;
  /** The shared model store (DCC_MODELS_DIR, default <workspace root>/.models). */
  modelsDir: string;
  /**
   * The user app containers run as (DCC_APP_UID / DCC_APP_GID, both or neither): a user of its
   * own, distinct from the agent's, so that a container escape does not hand over the agent's keys.
   * Unset: 1000:1000 when the agent runs as root, else the agent's own uid and gid.
   */
  appUser?: { uid: number; gid: number };
  /** The per-host HTTPS gateway (DCC_GATEWAY_*); absent when DCC_GATEWAY_DOMAIN is not set. */
  gateway?: GatewayConfig;
}

function loadAppUser(env: Record<string, string | undefined>): { uid: number; gid: number } | undefined {
  const uid = env.DCC_APP_UID || undefined;
  const gid = env.DCC_APP_GID || undefined;
  if (uid === undefined && gid === undefined) return undefined;
  const id = (name: string, raw: string | undefined) => {
    // Never root (0): an app container must not run as root on the host.
    if (raw === undefined || !/^\d{1,10}$/.test(raw) || Number(raw) < 1 || Number(raw) > 2 ** 31 - 2) {
      throw new AgentConfigError(`${name} must be a uid/gid from 1 to ${2 ** 31 - 2} (set DCC_APP_UID and DCC_APP_GID together)`);
    }
    return Number(raw);
  };
  return { uid: id("DCC_APP_UID", uid), gid: id("DCC_APP_GID", gid) };
}

// ---- gateway: the per-host HTTPS gateway in front of every app
export interface GatewayConfig {
  domain: string;
  tls: GatewayTlsMode;
  httpsPort: number;
  httpPort: number;
  /** The caddy binary (DCC_GATEWAY_CADDY, default: caddy on PATH). */
  caddyBin: string;
  /** Where browsers reach the console for a ticket (DCC_GATEWAY_CONSOLE_URL; default: from --console). */
  consoleOrigin?: string;
  /** How long an API token's answer is trusted (DCC_GATEWAY_TOKEN_CACHE_S, default 30). */
  tokenCacheS: number;
  /** The length of a minute for idleStopMinutes (DCC_GATEWAY_IDLE_MINUTE_MS; tests shorten it). */
  idleMinuteMs: number;
}

function loadGatewayConfig(env: Record<string, string | undefined>): GatewayConfig | undefined {
  const domain = env.DCC_GATEWAY_DOMAIN;
  if (!domain) return undefined;
  const d = GatewayDomainSchema.safeParse(domain);
  if (!d.success) throw new AgentConfigError(`DCC_GATEWAY_DOMAIN ${d.error.issues[0].message}`);
  const tls = env.DCC_GATEWAY_TLS || "acme";
  if (!(GATEWAY_TLS_MODES as readonly string[]).includes(tls)) throw new AgentConfigError("DCC_GATEWAY_TLS must be acme or internal");
  const port = (name: string, fallback: number) => {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallback;
    if (!/^\d{1,5}$/.test(raw) || Number(raw) < 1 || Number(raw) > 65535) throw new AgentConfigError(`${name} must be a port number`);
    return Number(raw);
  };
  const httpsPort = port("DCC_GATEWAY_HTTPS_PORT", 443);
  const httpPort = port("DCC_GATEWAY_HTTP_PORT", 80);
  if (httpsPort === httpPort) throw new AgentConfigError("DCC_GATEWAY_HTTPS_PORT and DCC_GATEWAY_HTTP_PORT must differ");
  let consoleOrigin: string | undefined;
  if (env.DCC_GATEWAY_CONSOLE_URL) {
    let u: URL;
    try {
      u = new URL(env.DCC_GATEWAY_CONSOLE_URL);
    } catch {
      throw new AgentConfigError("DCC_GATEWAY_CONSOLE_URL is not a URL");
    }
    if (!/^https?:$/.test(u.protocol) || u.username || u.password) throw new AgentConfigError("DCC_GATEWAY_CONSOLE_URL must be an http(s):// URL without credentials");
    consoleOrigin = u.origin;
  }
  const num = (name: string, fallback: number, min: number, max: number) => {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallback;
    if (!/^\d{1,9}$/.test(raw) || Number(raw) < min || Number(raw) > max) throw new AgentConfigError(`${name} must be a whole number from ${min} to ${max}`);
    return Number(raw);
  };
  return {
    domain: d.data,
    tls: tls as GatewayTlsMode,
    httpsPort,
    httpPort,
    caddyBin: env.DCC_GATEWAY_CADDY || "caddy",
    consoleOrigin,
    tokenCacheS: num("DCC_GATEWAY_TOKEN_CACHE_S", 30, 1, 300),
    idleMinuteMs: num("DCC_GATEWAY_IDLE_MINUTE_MS", 60_000, 100, 60_000),
  };
}
// ---- end gateway

export class AgentConfigError extends Error {}

export const USAGE = `Usage: dcc-agent --console <url> [--enroll <token>] [options]

  --console <url>             console address: https://host, wss://host/agent (DCC_CONSOLE_URL)
  --enroll <token>            one-time enrolment token from hosts.createEnrollment (DCC_ENROLL_TOKEN)
  --console-fingerprint <fp>  refuse to enrol unless the console key has this fingerprint (DCC_CONSOLE_FINGERPRINT)
  --name <name>               host name shown in the console (DCC_HOST_NAME; default: hostname)
  --state-dir <dir>           keys, enrolment and command journal (DCC_AGENT_STATE_DIR)
  --workspace-root <dir>      app workspaces (DCC_WORKSPACE_ROOT; default /opt/dockerstore)
  --ca-file <pem>             extra CA certificate(s) to trust for wss:// (DCC_CA_FILE)
  --allow-insecure-ws         allow plain ws:// to a non-loopback console (DCC_ALLOW_INSECURE_WS)
  --allow-insecure-git        accept http:// and private git hosts (DCC_ALLOW_INSECURE_GIT)
  --base-image <ref>          the console's base image, for the log (DCC_BASE_IMAGE; specs carry their image)
  --health-port <port>        serve GET /healthz on 127.0.0.1:<port> (DCC_AGENT_HEALTH_PORT)
  --version                   print the version and exit

Environment only: DCC_CLONE_TIMEOUT_S (longest git clone/fetch, default 3600),
DCC_PULL_TIMEOUT_S (longest image pull, default 7200), DCC_MODELS_DIR (the shared model store
mounted at /models in apps that use it, default <workspace root>/.models).
DCC_APP_UID / DCC_APP_GID: the user app containers run as (default 1000:1000 when the agent is
root, else the agent's own); scripts/install-agent.sh creates the user dcc-app for it.
Gateway (off unless DCC_GATEWAY_DOMAIN is set): DCC_GATEWAY_DOMAIN (apps at https://<app>.<domain>),
DCC_GATEWAY_TLS (acme | internal, default acme), DCC_GATEWAY_HTTPS_PORT (443), DCC_GATEWAY_HTTP_PORT (80),
DCC_GATEWAY_CADDY (the caddy binary, default caddy on PATH), DCC_GATEWAY_CONSOLE_URL (the console's
address for browsers, default: from --console), DCC_GATEWAY_TOKEN_CACHE_S (how long an API token's
answer is cached, default 30).
`;

const SWITCH_ON = /^(1|true|on|yes)$/i;
const SWITCH = /^(1|0|true|false|on|off|yes|no)$/i;

function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost" || h.endsWith(".localhost") || h === "::1") return true;
  return isIP(h) === 4 && h.startsWith("127.");
}

/** http(s):// becomes ws(s)://, a bare origin gets /agent; ws:// only to loopback unless allowed. */
export function normalizeConsoleUrl(raw: string, allowInsecureWs: boolean): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new AgentConfigError(`--console ${JSON.stringify(raw)} is not a URL`);
  }
  const scheme = { "http:": "ws:", "https:": "wss:", "ws:": "ws:", "wss:": "wss:" }[url.protocol];
  if (!scheme) throw new AgentConfigError("--console must be an https://, wss://, http:// or ws:// URL");
  if (url.username || url.password || url.search || url.hash) throw new AgentConfigError("--console must not carry credentials, a query or a fragment");
  url.protocol = scheme;
  if (url.pathname === "/" || url.pathname === "") url.pathname = "/agent";
  if (scheme === "ws:" && !allowInsecureWs && !isLoopback(url.hostname)) {
    throw new AgentConfigError(`plain ws:// is only allowed to loopback; use wss:// or pass --allow-insecure-ws (${url.hostname})`);
  }
  return url.toString();
}

/** Creates the folder if needed and says whether this process may write there (workspace-root default). */
export function writable(dir: string): boolean {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

export function loadAgentConfig(argv: string[], env: Record<string, string | undefined>): AgentConfig {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      console: { type: "string" },
      enroll: { type: "string" },
      "console-fingerprint": { type: "string" },
      name: { type: "string" },
      "state-dir": { type: "string" },
      "workspace-root": { type: "string" },
      "ca-file": { type: "string" },
      "allow-insecure-ws": { type: "boolean" },
      "allow-insecure-git": { type: "boolean" },
      "base-image": { type: "string" },
      "health-port": { type: "string" },
    },
  });
  const pick = (flag: string | undefined, name: string) => flag ?? (env[name] || undefined);
  const switchOf = (flag: boolean | undefined, name: string) => {
    if (flag) return true;
    const v = env[name];
    if (!v) return false;
    if (!SWITCH.test(v)) throw new AgentConfigError(`${name} must be one of 1/0, true/false, on/off`);
    return SWITCH_ON.test(v);
  };

  const rawUrl = pick(values.console, "DCC_CONSOLE_URL");
  if (!rawUrl) throw new AgentConfigError("--console (or DCC_CONSOLE_URL) is required");
  const allowInsecureWs = switchOf(values["allow-insecure-ws"], "DCC_ALLOW_INSECURE_WS");

  const healthRaw = pick(values["health-port"], "DCC_AGENT_HEALTH_PORT");
  let healthPort: number | undefined;
  if (healthRaw !== undefined) {
    if (!/^\d{1,5}$/.test(healthRaw) || Number(healthRaw) > 65535) throw new AgentConfigError("--health-port must be a port number");
    healthPort = Number(healthRaw);
  }
  const seconds = (name: string, fallback: number) => {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallback;
    if (!/^\d{1,7}$/.test(raw) || Number(raw) < 1) throw new AgentConfigError(`${name} must be a whole number of seconds, at least 1`);
    return Number(raw);
  };
  const cloneTimeoutS = seconds("DCC_CLONE_TIMEOUT_S", 3600);
  const pullTimeoutS = seconds("DCC_PULL_TIMEOUT_S", 7200);
  const fp = pick(values["console-fingerprint"], "DCC_CONSOLE_FINGERPRINT");
  if (fp !== undefined && !/^SHA256:[A-Za-z0-9+/]{43}$/.test(fp)) throw new AgentConfigError("--console-fingerprint must look like SHA256:<43 base64 characters>");

  const name = pick(values.name, "DCC_HOST_NAME");
  if (name !== undefined && !/^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/.test(name)) {
    throw new AgentConfigError("--name must be 1-63 letters, digits, dots, hyphens or underscores");
  }
  const stateDir =
    pick(values["state-dir"], "DCC_AGENT_STATE_DIR") ?? (writable("/var/lib/dcc-agent") ? "/var/lib/dcc-agent" : join(homedir(), ".dcc-agent"));
  const workspaceRoot = resolve(pick(values["workspace-root"], "DCC_WORKSPACE_ROOT") ?? "/opt/dockerstore");
  // A container mounts <root>/<app>: the agent's keys and journal must never be under the root.
  const inside = (parent: string, child: string) => {
    const r = relative(parent, child);
    return r === "" || (!r.startsWith("..") && !isAbsolute(r));
  };
  if (inside(workspaceRoot, resolve(stateDir)) || inside(resolve(stateDir), workspaceRoot)) {
    throw new AgentConfigError(`--state-dir and --workspace-root must not contain one another (${resolve(stateDir)}, ${workspaceRoot})`);
  }
  // The model store is mounted into containers: like a workspace, it must not hold the agent's state.
  const modelsDir = resolve(env.DCC_MODELS_DIR || join(workspaceRoot, ".models"));
  if (inside(modelsDir, resolve(stateDir)) || inside(resolve(stateDir), modelsDir)) {
    throw new AgentConfigError(`DCC_MODELS_DIR and --state-dir must not contain one another (${modelsDir}, ${resolve(stateDir)})`);
  }
  const appUser = loadAppUser(env);
  return {
    consoleUrl: normalizeConsoleUrl(rawUrl, allowInsecureWs),
    enrollToken: pick(values.enroll, "DCC_ENROLL_TOKEN"),
    consoleFingerprint: fp,
    name,
    stateDir: resolve(stateDir),
    workspaceRoot,
    caFile: pick(values["ca-file"], "DCC_CA_FILE"),
    allowInsecureWs,
    allowInsecureGit: switchOf(values["allow-insecure-git"], "DCC_ALLOW_INSECURE_GIT"),
    baseImage: pick(values["base-image"], "DCC_BASE_IMAGE"),
    healthPort,
    cloneTimeoutS,
    pullTimeoutS,
    modelsDir,
    appUser,
    gateway: loadGatewayConfig(env),
  };
}
