// A table-driven attack suite against the running console and a real agent on the real Docker
// engine (issue 6): hostile values in every field of apps.create / apps.update / the lifecycle
// procedures / templates.promote / hosts.*, oversized and malformed bodies, wrong content types
// and prototype-pollution keys. Each payload would create a canary file on the host if anything
// ever ran it. Every one must answer a clear 4xx naming the field, and leave no row, command,
// directory, container or process behind; the canary never appears.
//
// Start and install commands are the exception: shell text there is valid user code. It runs
// inside the container (the canary appears in the workspace and the container, never on the host
// path), and a secret in the console's and the agent's environment is not visible to it.
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { docker, listByLabel } from "../support/docker";
import { freePort } from "../support/net";
import { AppWatch, startStack, workspaceDirs, type AppItem, type Stack } from "./stack-support";

const TOKEN = `dcc-canary-${randomBytes(5).toString("hex")}`;
/** Created by any payload below that is executed anywhere on the host. */
const CANARY = `/tmp/${TOKEN}`;
/** Created (inside the container only) by the start and install commands of the "inside" app. */
const INSIDE = `dcc-inside-${randomBytes(5).toString("hex")}`;
const SECRET = `dcc-secret-${randomBytes(8).toString("hex")}`;
const VICTIM = "victim";

let s: Stack;
let watch: AppWatch;
let victimPort: number;
let freeAppPort: number;

// ---------------------------------------------------------------------------------------------
// Payloads

const SHELL = [
  `$(touch ${CANARY})`,
  `;touch ${CANARY}`,
  `| touch ${CANARY}`,
  `&& touch ${CANARY}`,
  `\`touch ${CANARY}\``,
  `$(touch\${IFS}${CANARY})`,
  `x';touch ${CANARY};'`,
  `x";touch ${CANARY};"`,
  `x\ntouch ${CANARY}`,
  `x\r\ntouch ${CANARY}`,
  `x\u0000;touch ${CANARY}`,
];
const OPTIONS = [`--upload-pack=touch ${CANARY}`, `-oProxyCommand=touch ${CANARY}`, "-p", "--privileged", "-u", "-rf"];
const TRAVERSAL = ["../../etc", "..%2f..%2fetc", "%2e%2e%2f%2e%2e%2fetc", "..", ".", "/etc/passwd", "a/../../b", "..\\..\\etc"];
const CONFUSABLE = ["ａｐｐ", "\u0430pp", "app\u200b", "app\u202e", "\ufb01le", "APP"];
const CONTROL = ["a\u0000b", "a\rb", "a\nb", "a\u001b[2Jb", "a\u0085b"];
const LONG = ["a".repeat(64), "a".repeat(100_000)];
/** JSON type confusion for a string field. */
const NOT_STRINGS: unknown[] = [7860, ["app"], { $ne: null }, null, true];

// ---------------------------------------------------------------------------------------------
// Cases

type Case = { label: string; proc: string; input: unknown; field: string | null; status?: number[] };
const cases: Case[] = [];
const add = (proc: string, field: string | null, label: string, input: unknown, status: number[] = [400]) =>
  cases.push({ label: `${proc} ${field ?? "(body)"}: ${label}`, proc, input, field, status });
const show = (v: unknown) => {
  const t = typeof v === "string" ? JSON.stringify(v) : JSON.stringify(v) ?? String(v);
  return t.length > 60 ? `${t.slice(0, 57)}…(${t.length})` : t;
};

function buildCases(): void {
  const create = () => ({ name: "atk-ok", repository: s.repoUrl(VICTIM), startCommand: "httpd -f -p $PORT -h /app", port: freeAppPort, hostId: s.hostId });
  const withField = (field: string, v: unknown) => ({ ...create(), [field]: v });
  const hostileNames = [...SHELL, ...OPTIONS, ...TRAVERSAL, ...CONFUSABLE, ...CONTROL, ...LONG, ...NOT_STRINGS, "", "app-", "__proto__", "a_b", "a b"];

  // apps.create, field by field (all others valid: a payload that got through would deploy)
  for (const v of hostileNames) add("apps.create", "name", show(v), withField("name", v));
  const repos: unknown[] = [
    `ext::sh -c touch% ${CANARY}`,
    `ext::sh -c touch%20${CANARY}`,
    `--upload-pack=touch ${CANARY}`,
    `-u touch ${CANARY}`,
    `https://example.com/--upload-pack=x`,
    `https://example.com/a/--upload-pack=touch%20${CANARY.slice(1)}`,
    `https://example.com/-oProxyCommand=touch`,
    `ssh://-oProxyCommand=touch%20${CANARY}/x.git`,
    `ssh://git@example.com/a/b.git`,
    `git://example.com/a/b.git`,
    `fd::17`,
    `file:///etc/passwd`,
    `file://${CANARY}`,
    `/etc/passwd`,
    `../../etc`,
    `https://example.com/a/../../etc`,
    `https://example.com/a/..%2f..%2fetc`,
    `https://example.com/a/%2e%2e/%2e%2e/etc`,
    `https://example.com/a/$(touch\${IFS}${CANARY}).git`,
    `https://example.com/a/\`touch\${IFS}${CANARY}\`.git`,
    `https://example.com/a.git;touch\${IFS}${CANARY}`,
    `https://example.com/a.git|touch`,
    `https://example.com/a.git&&touch`,
    `https://example.com/a.git\ntouch ${CANARY}`,
    `https://example.com/a.git\r\n`,
    `https://example.com/a\u0000.git`,
    `https://example.com/a%00.git`,
    `https://example.com/a%0a.git`,
    `https://example.com/a.git?upload-pack=touch`,
    `https://example.com/a.git#x`,
    `https://user:pw@example.com/a.git`,
    `https://g\u0456thub.com/a/b.git`,
    `https://example.com/\uff41/b.git`,
    `http://169.254.169.254/latest/meta-data`,
    `http://[::ffff:169.254.169.254]/latest`,
    `http://2852039166/latest`,
    `http://metadata.google.internal/x`,
    `https://example.com/${"a".repeat(3000)}.git`,
    "",
    ...NOT_STRINGS,
  ];
  for (const v of repos) add("apps.create", "repository", show(v), withField("repository", v));
  const commands: unknown[] = ["", " ", "\t", `run\ntouch ${CANARY}`, `run\rtouch ${CANARY}`, `run\u0000touch ${CANARY}`, "a\u001b[2J", "a\u0085b", "x".repeat(4097), 42, ["/bin/sh", "-c", `touch ${CANARY}`], { cmd: "x" }, true];
  for (const v of [...commands, null]) add("apps.create", "startCommand", show(v), withField("startCommand", v));
  for (const v of [...commands, null]) add("apps.create", "installCommand", show(v), withField("installCommand", v));
  const ports: unknown[] = ["7860", `7860; touch ${CANARY}`, `$(touch ${CANARY})`, 7860.5, -1, 0, 80, 1023, 65536, 1e10, [7860], { port: 7860 }, null, true];
  for (const v of ports) add("apps.create", "port", show(v), withField("port", v));
  for (const v of [...SHELL, ...OPTIONS, ...TRAVERSAL, ...CONFUSABLE, ...CONTROL, ...LONG, ...NOT_STRINGS, ""]) {
    add("apps.create", "templateId", show(v), withField("templateId", v));
  }
  add("apps.create", "templateId", "unknown template", withField("templateId", "no-such-template"), [404]);
  for (const v of [...SHELL, ...TRAVERSAL, ...CONFUSABLE, ...CONTROL, ...LONG, ...NOT_STRINGS, "", "-p", "--upload-pack"]) {
    add("apps.create", "hostId", show(v), withField("hostId", v), [400, 404]);
  }
  const images: unknown[] = ["--privileged", `$(touch ${CANARY})`, `busybox;touch ${CANARY}`, `busybox\ntouch`, "../../etc", "/etc/passwd", "file:///etc/passwd", "Busybox", "busybox:-x", "busybox@sha256:zz", "b\u0430sybox", "a".repeat(300), "", 1, ["busybox"], { image: "busybox" }, true];
  for (const v of images) add("apps.create", "image", show(v), withField("image", v));
  const gpus: unknown[] = [
    "required",
    ["required"],
    { mode: "always" },
    { mode: `$(touch ${CANARY})` },
    { mode: "required", count: "1" },
    { mode: "none", count: 0 },
    { mode: "none", count: 1e9 },
    { mode: "none", minMemoryMiB: -1 },
    { mode: "none", devices: "all" },
    { mode: "none", driver: "nvidia", options: { privileged: true } },
    JSON.parse('{"mode":"none","__proto__":{"privileged":true}}'),
    JSON.parse('{"mode":"none","constructor":{"prototype":{"privileged":true}}}'),
    {},
    1,
    true,
  ];
  for (const v of gpus) add("apps.create", "gpu", show(v), withField("gpu", v));
  // fields that do not exist (and that would widen the container if anything honoured them)
  for (const [k, v] of Object.entries({ privileged: true, volumes: ["/:/host"], network_mode: "host", pid: "host", cap_add: ["SYS_ADMIN"], user: "0:0", environment: { LD_PRELOAD: CANARY }, devices: ["/dev/mem"], command: ["sh", "-c", `touch ${CANARY}`] })) {
    add("apps.create", k, `unknown field ${k}`, withField(k, v));
  }
  add("apps.create", "__proto__", "prototype pollution (__proto__)", JSON.parse(`{"__proto__":{"installCommand":"touch ${CANARY}","port":7777,"privileged":true},"name":"atk-ok","repository":"x"}`));
  add("apps.create", "constructor", "prototype pollution (constructor.prototype)", JSON.parse(`{"constructor":{"prototype":{"installCommand":"touch ${CANARY}"}},"name":"atk-ok"}`));
  add("apps.create", "input", "an array body", [create()]);
  add("apps.create", "input", "a string body", JSON.stringify(create()));
  add("apps.create", "input", "null body", null);

  // apps.update on an existing, running app: every field it takes, and the ones it does not
  const update = (patch: Record<string, unknown>) => ({ name: VICTIM, ...patch });
  for (const v of [...SHELL, ...OPTIONS.slice(0, 3), ...TRAVERSAL.slice(0, 3), ...CONFUSABLE.slice(0, 2), ...LONG.slice(1), ...NOT_STRINGS]) {
    add("apps.update", "name", show(v), { name: v, port: freeAppPort });
  }
  for (const v of commands) add("apps.update", "startCommand", show(v), update({ startCommand: v }));
  for (const v of commands) add("apps.update", "installCommand", show(v), update({ installCommand: v }));
  for (const v of ports) add("apps.update", "port", show(v), update({ port: v }));
  for (const v of images) add("apps.update", "image", show(v), update({ image: v }));
  for (const v of gpus) add("apps.update", "gpu", show(v), update({ gpu: v }));
  for (const [k, v] of Object.entries({ repository: `ext::sh -c touch% ${CANARY}`, hostId: "other", templateId: "comfyui", privileged: true, volumes: ["/:/host"] })) {
    add("apps.update", k, `field ${k} cannot be changed or does not exist`, update({ [k]: v }));
  }
  add("apps.update", "__proto__", "prototype pollution", JSON.parse(`{"name":"${VICTIM}","__proto__":{"startCommand":"touch ${CANARY}"}}`));

  // app configuration: env, secrets, gitCredential, resources, healthPath (create and update)
  const envNames = [...SHELL, "a", "lower", "1ABC", "A-B", "A B", "A\nB", "A=B", "A\u0000", "ＡＢ", "PORT", "HOME", "PATH", "USER", "LOGNAME", "DCC_SECRET_KEY", "DCC_X", "", "A".repeat(129)];
  const nameCase = (n: string, v: unknown) => JSON.parse(`{${JSON.stringify(n)}: ${JSON.stringify(v)}}`);
  const envs: unknown[] = [
    ...envNames.map((n) => nameCase(n, "v")),
    { A: "x\u0000y" },
    { A: "x".repeat(2049) },
    { A: 1 },
    { A: null },
    { A: ["x"] },
    Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`V${i}`, "x"])),
    JSON.parse('{"__proto__":{"PORT":"1"}}'),
    ["A=1"],
    "A=1",
    7,
  ];
  const secretsIn: unknown[] = [
    ...envNames.map((n) => nameCase(n, "value-1234")),
    { S: "" },
    { S: "abc" },
    { S: "abcd\u0000" },
    { S: "x".repeat(4097) },
    { S: 42 },
    { S: { value: "x" } },
    Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`S${i}`, "value-1234"])),
    JSON.parse('{"__proto__":{"S":"value-1234"}}'),
    "S=value",
  ];
  const creds: unknown[] = [
    { token: "" },
    { token: "a\nb" },
    { token: "a\u0000b" },
    { token: `$(touch ${CANARY})\n` },
    { token: "x".repeat(4097) },
    { username: "a:b", token: "t" },
    { username: "a\nb", token: "t" },
    { username: "" , token: "t" },
    { username: "u" },
    { token: "t", url: "http://evil" },
    { token: 5 },
    "user:token",
    7,
  ];
  const resources: unknown[] = [{ memoryMiB: "2g" }, { memoryMiB: -1 }, { memoryMiB: 1.5 }, { memoryMiB: 1e12 }, { cpus: 0 }, { cpus: "1" }, { cpus: 1e6 }, { privileged: true }, "2g", []];
  const healthPaths: unknown[] = ["health", "/a b", "/a\nb", "/a\u0000", `/$(touch ${CANARY})`, "/`id`", "http://evil/", "/" + "a".repeat(600), 7, null];
  for (const [field, values] of [["env", envs], ["secrets", secretsIn], ["gitCredential", creds], ["resources", resources], ["healthPath", healthPaths]] as const) {
    for (const v of values) {
      add("apps.create", field, show(v), withField(field, v));
      add("apps.update", field, show(v), update({ [field]: v }));
    }
  }
  add("apps.create", "secrets", "a secret also set as plain env", { ...create(), env: { TOKEN_X: "a" }, secrets: { TOKEN_X: "value-1234" } });
  add("apps.create", "secrets", "a template's required secret missing", { ...create(), templateId: "atk-required", repository: undefined });

  // registries.set / delete (admin): hosts, usernames and passwords
  const reg = (patch: Record<string, unknown>) => ({ host: "registry.example.com", username: "u", password: "p", ...patch });
  for (const v of [`$(touch ${CANARY})`, "https://registry.example.com", "Registry.Example.com", "a b", "a\nb", "../x", "-p", "", "x".repeat(300), 5, null]) add("registries.set", "host", show(v), reg({ host: v }));
  for (const v of ["", "a\nb", "a\u0000", 5, null]) add("registries.set", "username", show(v), reg({ username: v }));
  for (const v of ["", "a\nb", "a\u0000", "x".repeat(4097), 5, null]) add("registries.set", "password", show(v), reg({ password: v }));
  add("registries.set", "insecure", "extra field", reg({ insecure: true }));
  for (const v of [`$(touch ${CANARY})`, "../x", "", 5]) add("registries.delete", "host", show(v), { host: v });

  // lifecycle: hostile names never reach an app (deinstall included), extra fields are refused
  for (const verb of ["start", "stop", "restart", "reinstall", "deinstall", "cancel"]) {
    for (const v of [`${VICTIM};touch ${CANARY}`, `$(touch ${CANARY})`, `-p`, "../victim", `${VICTIM}/..`, "..%2fvictim", "VICTIM", "v\u0456ctim", `${VICTIM}\n`, `${VICTIM}\u0000`, "", 42, [VICTIM], { $ne: null }, null]) {
      add(`apps.${verb}`, "name", show(v), { name: v });
    }
    // deinstall takes `force` (a forced removal), start and restart too (past a GPU refusal);
    // anything else is an extra field everywhere.
    const extra = verb === "deinstall" || verb === "start" || verb === "restart" ? "purge" : "force";
    add(`apps.${verb}`, extra, "extra field", { name: VICTIM, [extra]: true });
    add(`apps.${verb}`, "__proto__", "prototype pollution", JSON.parse(`{"name":"${VICTIM}","__proto__":{"clean":true}}`));
    add(`apps.${verb}`, "input", "array input", [{ name: VICTIM }]);
  }
  for (const v of ["true", 1, null, {}, [true]]) add("apps.reinstall", "clean", show(v), { name: VICTIM, clean: v });
  for (const v of ["true", 1, null, {}, [true], `$(touch ${CANARY})`]) add("apps.deinstall", "force", show(v), { name: VICTIM, force: v });
  for (const verb of ["start", "restart"]) for (const v of ["true", 1, null, {}, [true], `$(touch ${CANARY})`]) add(`apps.${verb}`, "force", show(v), { name: VICTIM, force: v });
  // shared model store and startup watching: JSON boolean and bounded integer only
  const notBooleans: unknown[] = ["true", 1, 0, null, {}, [true], `$(touch ${CANARY})`, "/models"];
  const notStall: unknown[] = ["600", 4, 0, -5, 86_401, 1e12, 10.5, null, true, [600], { s: 600 }, `$(touch ${CANARY})`];
  for (const v of notBooleans) add("apps.create", "sharedModels", show(v), withField("sharedModels", v));
  for (const v of notStall) add("apps.create", "startupStallSeconds", show(v), withField("startupStallSeconds", v));
  for (const v of notBooleans) add("apps.update", "sharedModels", show(v), update({ sharedModels: v }));
  for (const v of notStall) add("apps.update", "startupStallSeconds", show(v), update({ startupStallSeconds: v }));
  // the port preview reads only: hostile ids and ports are refused like everywhere else
  for (const v of [`$(touch ${CANARY})`, "../../etc", "-p", 7, null]) add("apps.suggestPort", "templateId", show(v), { templateId: v });
  for (const v of ["7860", 80, 65536, 7860.5, null]) add("apps.suggestPort", "port", show(v), { port: v });
  for (const v of [`$(touch ${CANARY})`, "../../etc", "a\nb", 42]) add("apps.suggestPort", "hostId", show(v), { hostId: v, port: 9000 });
  add("apps.suggestPort", "templateId", "unknown template", { templateId: "no-such-template" }, [404]);
  for (const v of ["../../etc", `$(touch ${CANARY})`]) add("apps.timeline", "name", show(v), { name: v });
  for (const v of [-1, "1", 1e6, null]) add("apps.timeline", "limit", show(v), { name: VICTIM, limit: v });

  // templates.promote
  for (const v of [...SHELL.slice(0, 6), ...OPTIONS.slice(0, 3), ...TRAVERSAL.slice(0, 4), ...CONFUSABLE.slice(0, 2), ...LONG.slice(1), ...NOT_STRINGS]) {
    add("templates.promote", "name", show(v), { name: v });
  }
  for (const v of [`$(touch ${CANARY})`, "../../etc", "-p", "Stable", "a".repeat(64), 7, null]) add("templates.promote", "slug", show(v), { name: VICTIM, slug: v });
  for (const v of [`x\ntouch ${CANARY}`, "a\u0000", "a".repeat(81), "", 5]) add("templates.promote", "title", show(v), { name: VICTIM, slug: "atk-tpl", title: v });
  for (const v of ["a\u0000", "a\u001b[2J", "a".repeat(401), "", []]) add("templates.promote", "summary", show(v), { name: VICTIM, slug: "atk-tpl", summary: v });
  add("templates.promote", "image", "extra field", { name: VICTIM, slug: "atk-tpl", image: "--privileged" });

  // hosts.*: ids that are not ours are not found (never another host), names are allow-listed
  const hostIds = [`$(touch ${CANARY})`, "../../etc", "..%2f..%2fetc", "-p", `${"h".repeat(65)}`, "", "a\u0000b", "a\nb", "\u0430bc", 42, null, ["x"]];
  for (const v of hostIds) add("hosts.get", "id", show(v), { id: v }, [400, 404]);
  for (const v of hostIds) add("hosts.revoke", "id", show(v), { id: v }, [400, 404]);
  for (const v of hostIds) add("hosts.ping", "id", show(v), { id: v }, [400, 404]);
  for (const v of hostIds) add("hosts.update", "id", show(v), { id: v, name: "renamed" }, [400, 404]);
  const hostNames = [`$(touch ${CANARY})`, `;touch ${CANARY}`, "-p", "../../etc", "a b", "a\nb", "a\u0000", "\u0430bc", "a".repeat(64), "", 7, null];
  for (const v of hostNames) add("hosts.update", "name", show(v), { id: s.hostId, name: v });
  for (const v of hostNames) add("hosts.createEnrollment", "name", show(v), { name: v });
  add("hosts.createEnrollment", "role", "extra field", { name: "ok", role: "admin" });
  for (const v of ["1", -5, 1e9, 1.5, null]) add("hosts.ping", "delayMs", show(v), { id: s.hostId, delayMs: v });
  for (const v of [5, ["x"], "x".repeat(201)]) add("hosts.ping", "echo", show(v), { id: s.hostId, echo: v });
  add("hosts.ping", "action", "extra field", { id: s.hostId, action: "deinstall" });

  // -- git refs, history and rollback: gitRef / gitSubmodules / apps.rollback commitSha --------
  const refs: unknown[] = [
    "-x",
    `--upload-pack=touch ${CANARY}`,
    "-oProxyCommand=x",
    "a..b",
    "a\u0000b",
    "main\n",
    `main\ntouch ${CANARY}`,
    `$(touch ${CANARY})`,
    `\`touch ${CANARY}\``,
    "a".repeat(201),
    "a".repeat(100_000),
    "a:b",
    "+refs/heads/x:refs/heads/y",
    "refs/heads/main",
    "HEAD",
    "a b",
    "a~1",
    "a^{}",
    "a@{1}",
    "a*",
    "a/.hidden",
    "a.lock",
    "/a",
    "a/",
    "a//b",
    "a.",
    "ｍａｉｎ",
    "A".repeat(40),
    "",
    42,
    ["main"],
    {},
    true,
  ];
  for (const v of [...refs, null]) add("apps.create", "gitRef", show(v), withField("gitRef", v));
  for (const v of refs) add("apps.update", "gitRef", show(v), update({ gitRef: v }));
  for (const v of ["true", 1, null, {}, [true]]) add("apps.create", "gitSubmodules", show(v), withField("gitSubmodules", v));
  for (const v of ["true", 1, null, {}]) add("apps.update", "gitSubmodules", show(v), update({ gitSubmodules: v }));
  const shas: unknown[] = ["-x", `--upload-pack=touch ${CANARY}`, "a..b", `$(touch ${CANARY})`, "a".repeat(39), "a".repeat(41), "A".repeat(40), "g".repeat(40), `${"a".repeat(39)}\n`, `${"a".repeat(39)}\u0000`, "a".repeat(100_000), "main", "", 42, null, ["a".repeat(40)]];
  for (const v of shas) add("apps.rollback", "commitSha", show(v), { name: VICTIM, commitSha: v });
  add("apps.rollback", "commitSha", "a commit this app never deployed", { name: VICTIM, commitSha: "0".repeat(40) });
  for (const v of [`$(touch ${CANARY})`, "../victim", "-p", "", null]) add("apps.rollback", "name", show(v), { name: v });
  add("apps.rollback", "clean", "extra field", { name: VICTIM, commitSha: "0".repeat(40), clean: true });
  for (const v of ["../../etc", `$(touch ${CANARY})`, "-p"]) add("apps.deploys", "name", show(v), { name: v });
  // -- end git refs ---------------------------------------------------------------------------
  // ---- gateway: app fields and share links
  const badBool: unknown[] = ["true", 1, 0, null, {}, [true], `$(touch ${CANARY})`];
  const badMinutes: unknown[] = [0, -1, 1.5, "5", 43_201, 1e12, true, {}, [5], `$(touch ${CANARY})`];
  for (const v of badBool) add("apps.create", "publicPort", show(v), withField("publicPort", v));
  for (const v of badMinutes) add("apps.create", "idleStopMinutes", show(v), withField("idleStopMinutes", v));
  for (const v of badBool) add("apps.update", "publicPort", show(v), { name: VICTIM, publicPort: v });
  for (const v of badMinutes) add("apps.update", "idleStopMinutes", show(v), { name: VICTIM, idleStopMinutes: v });
  for (const v of ["../../etc", `$(touch ${CANARY})`, "-p", "a".repeat(64), 7, null]) add("apps.shareCreate", "name", show(v), { name: v, expiresInHours: 1 });
  for (const v of [0, -1, 721, 1.5, "1", null, `$(touch ${CANARY})`]) add("apps.shareCreate", "expiresInHours", show(v), { name: VICTIM, expiresInHours: v });
  for (const v of ["a\u0000b", "a\nb", "a".repeat(101), 5]) add("apps.shareCreate", "label", show(v), { name: VICTIM, expiresInHours: 1, label: v });
  add("apps.shareCreate", "token", "extra field", { name: VICTIM, expiresInHours: 1, token: "dccs_chosen" });
  for (const v of ["../../etc", "shr_", `shr_${"0".repeat(15)}g`, `$(touch ${CANARY})`, 5, null]) add("apps.shareRevoke", "id", show(v), { name: VICTIM, id: v });
  // ---- end gateway
}

// ---------------------------------------------------------------------------------------------
// What must not change

async function processesMentioning(token: string): Promise<string[]> {
  const hits: string[] = [];
  for (const pid of await readdir("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    if (cmd.includes(token)) hits.push(`${pid}: ${cmd.replace(/\0/g, " ")}`);
  }
  return hits;
}

async function snapshot(): Promise<Record<string, unknown>> {
  const db = s.c.db();
  const one = async (sql: string) => (await db.execute(sql)).rows.map((r) => ({ ...r }));
  return {
    counts: await one(
      "SELECT (SELECT count(*) FROM apps) AS apps, (SELECT count(*) FROM commands) AS commands, (SELECT count(*) FROM marketplace_templates) AS templates, (SELECT count(*) FROM enrollments) AS enrollments, (SELECT count(*) FROM hosts) AS hosts, (SELECT count(*) FROM app_secrets) AS secrets, (SELECT count(*) FROM registry_credentials) AS registries, (SELECT count(*) FROM deploys) AS deploys, (SELECT count(*) FROM gateway_shares) AS shares",
    ),
    apps: await one(
      "SELECT name, repository, start_command, install_command, port, image, gpu, gpu_devices, host_id, template_id, commit_sha, git_ref, git_submodules, env, secret_names, secrets_version, git_credential_sealed, resources, health_path, shared_models, startup_stall_seconds, public_port, idle_stop_minutes FROM apps ORDER BY name",
    ),
    hosts: await one("SELECT id, name, revoked_at FROM hosts ORDER BY id"),
    workspaces: await workspaceDirs(s.workspaceRoot),
    beside: await workspaceDirs(join(s.workspaceRoot, "..")),
    containers: (await listByLabel(`dcc.host=${s.hostId}`)).sort(),
  };
}

beforeAll(async () => {
  s = await startStack({ SOME_SECRET: SECRET });
  watch = await AppWatch.open(s.c);
  await s.git.createRepo(VICTIM, { "index.html": "victim\n" });
  victimPort = await freePort();
  freeAppPort = await freePort();
  const r = await s.c.mutate("apps.create", { name: VICTIM, repository: s.repoUrl(VICTIM), startCommand: "httpd -f -p $PORT -h /app", port: victimPort, hostId: s.hostId });
  expect(r.status).toBe(200);
  await watch.until("victim RUNNING", async () => {
    const a = (await s.c.query<AppItem>("apps.get", { name: VICTIM })).body.result?.data;
    return a?.status === "RUNNING" && a.health === "reachable";
  });
  // A template that requires a secret: creating from it without the secret is a field error.
  await s.c.db().execute({
    sql: "INSERT INTO marketplace_templates (slug, name, summary, repository, start_command, default_port, secrets, source) VALUES ('atk-required', 'Needs a token', 'x', ?, 'httpd -f -p $PORT -h /app', 8080, ?, 'promoted')",
    args: [s.repoUrl(VICTIM), JSON.stringify([{ name: "HF_TOKEN", description: "Hugging Face token", required: true }])],
  });
  buildCases();
});
afterAll(async () => {
  watch?.close();
  await s?.close();
});

describe("hostile input through every field is refused with a 4xx naming the field, leaving nothing behind", () => {
  let base: Record<string, unknown>;
  beforeAll(async () => {
    base = await snapshot();
    expect(existsSync(CANARY)).toBe(false);
  });

  it("has a case for every field of every procedure that takes user input", () => {
    const covered = new Set(cases.map((c) => `${c.proc} ${c.field}`));
    for (const f of ["name", "repository", "startCommand", "installCommand", "port", "templateId", "hostId", "image", "gpu"]) expect(covered).toContain(`apps.create ${f}`);
    for (const f of ["name", "startCommand", "installCommand", "port", "image", "gpu", "repository"]) expect(covered).toContain(`apps.update ${f}`);
    for (const v of ["start", "stop", "restart", "reinstall", "deinstall", "cancel"]) expect(covered).toContain(`apps.${v} name`);
    expect(covered).toContain("apps.deinstall force");
    for (const f of ["apps.create gitRef", "apps.update gitRef", "apps.create gitSubmodules", "apps.update gitSubmodules", "apps.rollback commitSha", "apps.rollback name"]) expect(covered).toContain(f);
    for (const p of ["apps.start force", "apps.restart force", "apps.create sharedModels", "apps.create startupStallSeconds", "apps.update sharedModels", "apps.update startupStallSeconds", "apps.suggestPort port"]) expect(covered).toContain(p);
    for (const f of ["name", "slug", "title", "summary"]) expect(covered).toContain(`templates.promote ${f}`);
    for (const f of ["env", "secrets", "gitCredential", "resources", "healthPath"]) {
      expect(covered).toContain(`apps.create ${f}`);
      expect(covered).toContain(`apps.update ${f}`);
    }
    for (const f of ["host", "username", "password"]) expect(covered).toContain(`registries.set ${f}`);
    for (const p of ["get id", "update id", "update name", "revoke id", "ping id", "createEnrollment name"]) expect(covered).toContain(`hosts.${p}`);
    for (const p of ["create publicPort", "create idleStopMinutes", "update publicPort", "update idleStopMinutes", "shareCreate name", "shareCreate expiresInHours", "shareCreate label", "shareRevoke id"]) expect(covered).toContain(`apps.${p}`);
    expect(cases.length).toBeGreaterThan(300);
  });

  it("refuses every case", async () => {
    const failures: string[] = [];
    for (const k of cases) {
      const call = k.proc === "hosts.get" || k.proc === "apps.timeline" || k.proc === "apps.deploys" || k.proc === "apps.suggestPort" ? s.c.query : s.c.mutate;
      const r = await call(k.proc, k.input);
      const err = r.body.error;
      const problems: string[] = [];
      if (!k.status!.includes(r.status)) problems.push(`status ${r.status} (wanted ${k.status!.join("/")})`);
      if (!err) problems.push("no error");
      else if (k.field) {
        const keys = Object.keys(err.data.fields ?? {});
        if (!keys.some((f) => f === k.field || f.startsWith(`${k.field}.`))) problems.push(`fields ${JSON.stringify(err.data.fields)} do not name ${k.field}`);
        if (!err.message.includes(k.field)) problems.push(`message ${JSON.stringify(err.message.slice(0, 120))} does not name ${k.field}`);
      }
      if (existsSync(CANARY)) problems.push("THE CANARY APPEARED");
      const now = await snapshot();
      if (JSON.stringify(now) !== JSON.stringify(base)) problems.push(`state changed: ${JSON.stringify(now).slice(0, 600)}`);
      const procs = await processesMentioning(TOKEN);
      if (procs.length) problems.push(`processes: ${procs.join(" | ")}`);
      if (problems.length) failures.push(`${k.label}: ${problems.join("; ")}`);
    }
    expect(failures).toEqual([]);
    // Each case snapshots the database, the disk, Docker and /proc: several hundred cases on a busy 2-core machine.
  }, 540_000);

  it("no payload ran: no canary, no process, and the victim app is untouched and still serving", async () => {
    // Give anything that might have been set off time to show itself.
    await new Promise((r) => setTimeout(r, 1500));
    expect(existsSync(CANARY)).toBe(false);
    expect(await processesMentioning(TOKEN)).toEqual([]);
    expect(await snapshot()).toEqual(base);
    expect(await (await fetch(`http://127.0.0.1:${victimPort}/index.html`)).text()).toBe("victim\n");
    const host = (await s.c.query<{ online: boolean; revoked: boolean }>("hosts.get", { id: s.hostId })).body.result!.data;
    expect(host).toMatchObject({ online: true, revoked: false });
  });

  it("a prototype-pollution attempt polluted nothing: a later call without port or installCommand still lacks them", async () => {
    const r = await s.c.mutate("apps.create", { name: "after-pollution", repository: s.repoUrl(VICTIM), startCommand: "x" });
    expect(r.status).toBe(400);
    expect(r.body.error!.data.fields).toEqual({ port: "is required" });
    const list = await s.c.query<{ items: Record<string, unknown>[] }>("apps.list");
    for (const a of list.body.result!.data.items) expect(Object.keys(a)).not.toContain("privileged");
  });
});

describe("malformed, oversized and mistyped requests", () => {
  const post = (path: string, body: string, headers: Record<string, string> = { "content-type": "application/json" }) =>
    fetch(`${s.c.url}/api/trpc/${path}`, { method: "POST", headers: { ...s.c.authHeaders, ...headers }, body });
  let base: Record<string, unknown>;
  beforeAll(async () => {
    base = await snapshot();
  });

  it("refuses a body over 1 MiB with 413 before reading it", async () => {
    const big = JSON.stringify({ name: "big", repository: s.repoUrl(VICTIM), startCommand: `touch ${CANARY}; ${"x".repeat(1024 * 1024)}`, port: freeAppPort });
    const r = await post("apps.create", big);
    expect(r.status).toBe(413);
    // The same body with no length (chunked): refused (411) before it is read; the server may
    // close the connection while the client still writes, which is a refusal too.
    const chunked = await fetch(`${s.c.url}/api/trpc/apps.create`, {
      method: "POST",
      headers: { ...s.c.authHeaders, "content-type": "application/json" },
      body: new ReadableStream({
        start(ctl) {
          ctl.enqueue(new TextEncoder().encode(big));
          ctl.close();
        },
      }),
      duplex: "half",
    } as RequestInit).then(
      (res) => res.status,
      (e: Error & { cause?: { code?: string } }) => e.cause?.code ?? e.message,
    );
    expect([411, 413, "EPIPE", "ECONNRESET"]).toContain(chunked);
    expect(await snapshot()).toEqual(base);
  });

  it.each([
    ["truncated", '{"name":"x",'],
    ["single quotes", "{'name':'x'}"],
    ["trailing garbage", '{"name":"x"} ;touch /tmp/x'],
    ["NUL bytes", "\u0000\u0000"],
    ["bare word", "undefined"],
    ["empty", ""],
  ])("answers malformed JSON (%s) with 400 BAD_REQUEST", async (_l, body) => {
    const r = await post("apps.create", body);
    expect(r.status).toBe(400);
    expect((await r.json()).error.data.code).toBe("BAD_REQUEST");
    expect(await snapshot()).toEqual(base);
  });

  it.each([
    ["text/plain", "text/plain"],
    ["a form", "application/x-www-form-urlencoded"],
    ["multipart", "multipart/form-data; boundary=x"],
    ["xml", "application/xml"],
    ["a byte stream", "application/octet-stream"],
    ["JSON look-alike", "application/jsonp"],
  ])("refuses a valid JSON body sent as %s (415)", async (_l, type) => {
    const body = JSON.stringify({ name: "typed", repository: s.repoUrl(VICTIM), startCommand: "httpd -f -p $PORT -h /app", port: freeAppPort });
    const r = await post("apps.create", body, { "content-type": type });
    expect(r.status).toBe(415);
    expect((await r.json()).error.data.code).toBe("UNSUPPORTED_MEDIA_TYPE");
    expect(await snapshot()).toEqual(base);
  });

  it("refuses a real multipart form (which tRPC alone would hand to the procedure) with 415", async () => {
    const form = new FormData();
    for (const [k, v] of Object.entries({ name: "formed", repository: s.repoUrl(VICTIM), startCommand: "httpd -f -p $PORT -h /app", port: String(freeAppPort) })) form.set(k, v);
    const r = await fetch(`${s.c.url}/api/trpc/apps.create`, { method: "POST", headers: s.c.authHeaders, body: form });
    expect(r.status).toBe(415);
    const stop = new FormData();
    stop.set("name", VICTIM);
    expect((await fetch(`${s.c.url}/api/trpc/apps.stop`, { method: "POST", headers: s.c.authHeaders, body: stop })).status).toBe(415);
    expect(await snapshot()).toEqual(base);
  });

  it("refuses an oversized or malformed query string", async () => {
    const huge = await fetch(`${s.c.url}/api/trpc/apps.get?input=${encodeURIComponent(JSON.stringify({ name: "a".repeat(100_000) }))}`, { headers: s.c.authHeaders });
    expect(huge.status).toBeGreaterThanOrEqual(400);
    expect(huge.status).toBeLessThan(500);
    const bad = await fetch(`${s.c.url}/api/trpc/apps.get?input=${encodeURIComponent("{")}`, { headers: s.c.authHeaders });
    expect(bad.status).toBe(400);
    const viaGet = await fetch(`${s.c.url}/api/trpc/apps.create?input=${encodeURIComponent(JSON.stringify({ name: "via-get" }))}`, { headers: s.c.authHeaders });
    expect(viaGet.status).toBe(405);
    expect(await snapshot()).toEqual(base);
  });
});

describe("start and install commands are user code: they run inside the container only", () => {
  it("creates its files in the workspace and the container, never on the host, and sees no console or agent secret", async () => {
    // The secret really is in both processes' environments.
    for (const pid of [s.c.proc.pid!, s.agent.proc.pid!]) expect(await readFile(`/proc/${pid}/environ`, "utf8")).toContain(`SOME_SECRET=${SECRET}`);

    const name = "inside";
    await s.git.createRepo(name, { "index.html": "inside\n" });
    const port = await freePort();
    const startCommand = [
      `echo $(touch /tmp/${INSIDE}) \`touch /app/${INSIDE}-backtick\`;touch /app/${INSIDE}`,
      `echo "braced=[\${SOME_SECRET}] bare=[$SOME_SECRET]" > /app/secret.txt`,
      "env > /app/env.txt",
      "exec httpd -f -p $PORT -h /app",
    ].join("; ");
    const installCommand = `echo $(touch /tmp/${INSIDE}-install) > /app/install-ran; echo "[\${SOME_SECRET}]" > /app/install-secret.txt`;
    const r = await s.c.mutate<AppItem>("apps.create", { name, repository: s.repoUrl(name), startCommand, installCommand, port, hostId: s.hostId });
    expect(r.status).toBe(200);
    expect(r.body.result!.data.startCommand).toBe(startCommand); // stored exactly as given
    await watch.until("inside RUNNING", async () => {
      const a = (await s.c.query<AppItem>("apps.get", { name })).body.result?.data;
      if (a?.lastError) throw new Error(a.lastError);
      return a?.status === "RUNNING" && a.health === "reachable";
    });

    const ws = join(s.workspaceRoot, name);
    // it ran: in the workspace...
    expect(existsSync(join(ws, INSIDE))).toBe(true);
    expect(existsSync(join(ws, `${INSIDE}-backtick`))).toBe(true);
    expect(existsSync(join(ws, "install-ran"))).toBe(true);
    // ...and in the container's own /tmp...
    const [id] = await listByLabel(`dcc.app=${name}`);
    expect(await docker(["exec", id!, "ls", `/tmp/${INSIDE}`])).toBe(`/tmp/${INSIDE}`);
    // ...never on the host
    expect(existsSync(`/tmp/${INSIDE}`)).toBe(false);
    expect(existsSync(`/tmp/${INSIDE}-install`)).toBe(false);
    // no secret reached it, through compose interpolation or the environment
    expect(await readFile(join(ws, "secret.txt"), "utf8")).toBe("braced=[] bare=[]\n");
    expect(await readFile(join(ws, "install-secret.txt"), "utf8")).toBe("[]\n");
    const env = await readFile(join(ws, "env.txt"), "utf8");
    expect(env).not.toContain(SECRET);
    expect(env).not.toMatch(/^SOME_SECRET=/m);
    expect(env).not.toMatch(/^DCC_/m);

    expect((await s.c.mutate("apps.deinstall", { name })).status).toBe(200);
    await watch.until("inside removed", async () => (await s.c.query("apps.get", { name })).status === 404);
    expect(await listByLabel(`dcc.app=${name}`)).toEqual([]);
    expect(existsSync(ws)).toBe(false);
    expect(existsSync(`/tmp/${INSIDE}`)).toBe(false);
  });

  it("the canary of the refused payloads never appeared", async () => {
    expect(existsSync(CANARY)).toBe(false);
    expect(await processesMentioning(TOKEN)).toEqual([]);
  });
});
