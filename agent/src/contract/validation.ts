// Field rules shared by the console and the agent. Everything a user types passes through these
// schemas on both sides; none of it is ever trimmed or coerced, and none of it reaches a shell.
import { isIP } from "node:net";
import { z } from "zod";
import { GPU_MODES } from "./enums";

/** Type errors say "is required" when the field is missing, else what was expected. */
const expected = (what: string) => ({
  error: (iss: { input?: unknown }) => (iss.input === undefined ? "is required" : `must be ${what}`),
});

/** DNS label: the app's key, its workspace folder and its compose project name. */
export const AppNameSchema = z
  .string(expected("a string"))
  .min(1, { error: "is required" })
  .max(63, { error: "must be at most 63 characters" })
  .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, {
    error: "must be lower-case letters, digits and hyphens, not starting or ending with a hyphen",
  });

export const PortSchema = z
  .number(expected("a whole number"))
  .int({ error: "must be a whole number" })
  .min(1024, { error: "must be between 1024 and 65535" })
  .max(65535, { error: "must be between 1024 and 65535" });

// Control characters (C0 except tab, DEL, C1) would let a command smuggle line breaks or escape
// sequences into logs and compose files.
const CONTROL = /[\u0000-\u0008\u000A-\u001F\u007F-\u009F]/;
export const COMMAND_MAX = 4096;

export const CommandSchema = z
  .string(expected("a string"))
  .min(1, { error: "is required" })
  .max(COMMAND_MAX, { error: `must be at most ${COMMAND_MAX} characters` })
  .refine((s) => !CONTROL.test(s), { error: "must not contain control characters" })
  .refine((s) => s.trim().length > 0, { error: "must not be blank" });

/** Docker image reference: [registry[:port]/]path[:tag][@digest], lower-case path. */
export const ImageSchema = z
  .string(expected("a string"))
  .max(255, { error: "must be at most 255 characters" })
  .regex(
    /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]{1,5})?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/,
    { error: "must be a Docker image reference such as nvcr.io/nvidia/pytorch:24.10-py3" },
  );

export const GpuModeSchema = z.enum(GPU_MODES, { error: `must be one of ${GPU_MODES.join(", ")}` });

export const GpuRequirementSchema = z.strictObject({
  mode: GpuModeSchema,
  count: z.number().int().min(1).max(16).optional(),
  minMemoryMiB: z.number().int().min(1).max(1_048_576).optional(),
  /** Pinned device indexes: always these GPUs, held even while the app is stopped. */
  devices: z.array(z.string().regex(/^\d{1,3}$/, { error: "must be GPU indexes such as \"0\"" })).min(1).max(16).optional(),
});
export type GpuRequirement = z.infer<typeof GpuRequirementSchema>;

/** Linux capability names a template may add back after all are dropped. */
export const CapabilitySchema = z.enum([
  "CHOWN",
  "DAC_OVERRIDE",
  "FOWNER",
  "SETUID",
  "SETGID",
  "NET_BIND_SERVICE",
  "SYS_NICE",
  "IPC_LOCK",
]);

/** A path inside the workspace, relative, without `..`: survives a clean reinstall. */
export const KeepPathSchema = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/, { error: "must be a relative path" })
  .refine((p) => !p.split("/").some((seg) => seg === ".." || seg === "."), {
    error: "must not contain . or .. segments",
  });

export interface RepositoryRules {
  /** Also admit http:// and loopback / private hosts (labs and tests). */
  allowInsecure: boolean;
  /** When set, only these host names are accepted. */
  allowedHosts?: string[];
}

const METADATA_HOSTS = new Set([
  "metadata",
  "metadata.google.internal",
  "metadata.goog",
  "instance-data",
  "instance-data.ec2.internal",
]);

function ipv4Parts(host: string): number[] | null {
  if (isIP(host) !== 4) return null;
  return host.split(".").map(Number);
}

// 100.100.100.200 is Alibaba Cloud's metadata service (inside the otherwise private 100.64/10).
const isForbiddenV4 = (v4: number[]) =>
  (v4[0] === 169 && v4[1] === 254) || v4[0] === 0 || v4.every((n) => n === 255) || v4.join(".") === "100.100.100.200";

/**
 * The IPv4 address an IPv6 literal carries: IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible
 * (::a.b.c.d) or NAT64 (64:ff9b::a.b.c.d), in dotted form or as URL parsing writes it (hex).
 */
function embeddedIpv4(h: string): number[] | null {
  const m = /^(?:::ffff:|::|64:ff9b::)(?:(\d{1,3}(?:\.\d{1,3}){3})|([0-9a-f]{1,4}):([0-9a-f]{1,4}))$/.exec(h);
  if (!m) return null;
  if (m[1]) return ipv4Parts(m[1]);
  const hi = parseInt(m[2]!, 16);
  const lo = parseInt(m[3]!, 16);
  return [hi >> 8, hi & 255, lo >> 8, lo & 255];
}

/** Addresses refused in every mode: link-local (cloud metadata lives there) and unspecified. */
export function isForbiddenAddress(host: string): boolean {
  const v4 = ipv4Parts(host);
  if (v4) return isForbiddenV4(v4);
  if (isIP(host) === 6) {
    const h = host.toLowerCase();
    const embedded = embeddedIpv4(h);
    if (embedded && isForbiddenV4(embedded)) return true;
    return h.startsWith("fe8") || h.startsWith("fe9") || h.startsWith("fea") || h.startsWith("feb") ||
      h === "::" || h.startsWith("fd00:ec2:");
  }
  return false;
}

export function isLocalOrPrivate(host: string): boolean {
  if (host === "localhost" || host.endsWith(".localhost")) return true;
  const v4 = ipv4Parts(host);
  if (v4) {
    return v4[0] === 127 || v4[0] === 10 || (v4[0] === 172 && v4[1] >= 16 && v4[1] <= 31) ||
      (v4[0] === 192 && v4[1] === 168) || (v4[0] === 100 && v4[1] >= 64 && v4[1] <= 127);
  }
  if (isIP(host) === 6) {
    const h = host.toLowerCase();
    return h === "::1" || h.startsWith("fc") || h.startsWith("fd") || h.startsWith("::ffff:");
  }
  return false;
}

const DNS_NAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/;

/** Returns null when the URL is acceptable, else the reason (for the `repository` field). */
export function repositoryProblem(raw: string, rules: RepositoryRules): string | null {
  if (raw.length === 0) return "is required";
  if (raw.length > 2048) return "must be at most 2048 characters";
  if (/[\s\u0000-\u001F\u007F-\u009F]/.test(raw)) return "must not contain whitespace or control characters";
  if (/%(?:[01][0-9a-f]|20|7f)|%c2%[89][0-9a-f]/i.test(raw)) {
    return "must not contain encoded whitespace or control characters";
  }
  if (raw.startsWith("-")) return "must not start with a hyphen";
  // A server may decode an encoded slash into a path separator (..%2f..%2fetc): refuse it outright.
  if (/%(?:2f|5c)/i.test(raw)) return "must not contain encoded slashes or backslashes";
  // URL parsing folds dot segments away; refuse them in the raw text, plain or encoded.
  if (/(^|\/)(\.|%2e){1,2}(\/|$)/i.test(raw.replace(/^[a-z]+:\/\//i, ""))) return "must not contain . or .. path segments";
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(raw)?.[1]?.toLowerCase();
  const allowedSchemes = rules.allowInsecure ? ["https", "http"] : ["https"];
  if (!scheme || !allowedSchemes.includes(scheme) || raw.slice(0, scheme.length) !== scheme) {
    return rules.allowInsecure ? "must be an http:// or https:// URL" : "must be an https:// URL";
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "must be a valid URL";
  }
  if (url.username || url.password || /^[a-z]+:\/\/[^/]*@/i.test(raw)) return "must not contain credentials";
  if (url.search || url.hash || raw.includes("?") || raw.includes("#")) return "must not have a query or fragment";
  // An allow-list of URL characters: no shell or quoting characters ($ ` ; | & ( ) ' " < > \ { }),
  // and no Unicode, whose look-alike letters could pass for a trusted host (URL parsing would
  // silently turn them into punycode). Anything else must be percent-encoded.
  if (/[^A-Za-z0-9._~%/:@+[\]-]/.test(raw)) {
    return "must contain only ASCII letters, digits and - . _ ~ % / : @ + (percent-encode anything else)";
  }
  const host = url.hostname.replace(/^\[|\]$/g, "").toLowerCase();
  if (!host) return "must name a host";
  if (isForbiddenAddress(host) || METADATA_HOSTS.has(host)) return "must not point at a link-local or metadata address";
  const local = isLocalOrPrivate(host);
  if (local && !rules.allowInsecure) return "must not point at a loopback or private address";
  if (!local && isIP(host) === 0 && !DNS_NAME.test(host)) return "must name a DNS host";
  if (rules.allowedHosts && rules.allowedHosts.length > 0 && !rules.allowedHosts.includes(host)) {
    return "host is not on the allowed list";
  }
  const path = url.pathname;
  if (path === "/" || path === "") return "must include the repository path";
  if (path.split("/").some((seg) => seg.startsWith("-"))) return "must not contain option-like path segments";
  return null;
}

export function repositorySchema(rules: RepositoryRules) {
  return z.string(expected("a string")).superRefine((value, ctx) => {
    const problem = repositoryProblem(value, rules);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  });
}

/** The complete, resolved description of an app as it is deployed (after template defaults). */
export function appSpecSchema(rules: RepositoryRules) {
  return z.strictObject({
    name: AppNameSchema,
    repository: repositorySchema(rules),
    startCommand: CommandSchema,
    installCommand: CommandSchema.nullable().optional(),
    port: PortSchema,
    image: ImageSchema.nullable().optional(),
    gpu: GpuRequirementSchema.optional(),
  });
}
export type AppSpec = z.infer<ReturnType<typeof appSpecSchema>>;

/** Flattens zod issues into `{ field: message }`, the shape every API error carries. */
export function fieldErrors(error: z.ZodError): Record<string, string> {
  // A Map, not a plain object: a hostile key such as `__proto__` must be named like any other
  // (assigning it on a plain object would set the prototype instead and lose the field).
  const out = new Map<string, string>();
  for (const issue of error.issues) {
    const key = issue.path.map(String).join(".") || "input";
    let message = issue.message;
    if (issue.code === "unrecognized_keys") {
      for (const k of issue.keys) out.set([...issue.path.map(String), k].join("."), "is not a known field");
      continue;
    }
    if (message.startsWith("Invalid input: expected")) {
      message = message.endsWith("received undefined") ? "is required" : message.replace("Invalid input: ", "must be ");
    }
    if (!out.has(key)) out.set(key, message);
  }
  // Object.fromEntries defines own properties, so `__proto__` stays an ordinary key.
  return Object.fromEntries(out);
}
