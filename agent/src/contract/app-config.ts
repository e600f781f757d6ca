// An app's configuration beyond its code: environment variables, secrets, a git credential,
// resource limits and the probe path. Shared by the console (API input) and the agent (deploy spec,
// the sealed secrets that travel beside a command). Values are taken exactly as given: nothing is
// trimmed, and a `$` stays a `$` all the way into the container.
import { z } from "zod";

const str = { error: (iss: { input?: unknown }) => (iss.input === undefined ? "is required" : "must be a string") };

/** Set by the platform for every container (or meaningless to override): never an app's own. */
export const RESERVED_ENV_NAMES = ["PORT", "HOME", "PATH", "USER", "LOGNAME"] as const;
export const ENV_NAME_MAX = 128;
export const ENV_MAX_COUNT = 64;
export const ENV_VALUE_MAX = 2048;
export const SECRET_MAX_COUNT = 32;
export const SECRET_VALUE_MAX = 4096;

export const EnvNameSchema = z
  .string()
  .min(1, { error: "is required" })
  .max(ENV_NAME_MAX, { error: `must be at most ${ENV_NAME_MAX} characters` })
  .regex(/^[A-Z_][A-Z0-9_]*$/, { error: "must be upper-case letters, digits and _, not starting with a digit" })
  .refine((n) => !(RESERVED_ENV_NAMES as readonly string[]).includes(n), { error: `is reserved (${RESERVED_ENV_NAMES.join(", ")} are set by the platform)` })
  .refine((n) => !n.startsWith("DCC_"), { error: "is reserved (DCC_* names belong to the platform)" });

// NUL cannot be carried by an environment at all; the other characters (newlines included) can,
// and reach the container verbatim.
const noNul = (s: string) => !s.includes("\u0000");

export const EnvValueSchema = z
  .string({ error: "must be a string" })
  .max(ENV_VALUE_MAX, { error: `must be at most ${ENV_VALUE_MAX} characters` })
  .refine(noNul, { error: "must not contain NUL characters" });

export const SecretValueSchema = z
  .string({ error: "must be a string" })
  .min(1, { error: "must not be empty (null removes a secret)" })
  .min(4, { error: "must be at least 4 characters (a shorter value could not be hidden in logs)" })
  .max(SECRET_VALUE_MAX, { error: `must be at most ${SECRET_VALUE_MAX} characters` })
  .refine(noNul, { error: "must not contain NUL characters" });

/**
 * A record keyed by env names whose every key is checked and named on failure (zod's record
 * reports a bad key without its path; here the issue's path is the key itself).
 */
function namedRecord<V extends z.ZodType>(value: V, maxCount: number) {
  // Keys are checked on the input object itself: a key such as `__proto__` would vanish from a
  // parsed copy instead of being refused.
  return z
    .custom<Record<string, unknown>>((v) => typeof v === "object" && v !== null && !Array.isArray(v), { error: "must be an object of NAME: value" })
    .superRefine((obj, ctx) => {
      const keys = Object.keys(obj);
      if (keys.length > maxCount) ctx.addIssue({ code: "custom", message: `must have at most ${maxCount} entries` });
      for (const k of keys) {
        const r = EnvNameSchema.safeParse(k);
        if (!r.success) ctx.addIssue({ code: "custom", path: [k], message: r.error.issues[0]!.message });
      }
    })
    .pipe(z.record(z.string(), value));
}

/** `env` on the API and in the spec: NAME → value. */
export const EnvSchema = namedRecord(EnvValueSchema, ENV_MAX_COUNT);
export type AppEnv = z.infer<typeof EnvSchema>;

/** `secrets` on the API: a value sets or replaces, `null` removes. Write-only. */
export const SecretsInputSchema = namedRecord(SecretValueSchema.nullable(), SECRET_MAX_COUNT);

/** The names of an app's secrets (the spec carries these, never a value). */
export const SecretNamesSchema = z.array(EnvNameSchema).max(SECRET_MAX_COUNT);

const CONTROL = /[\u0000-\u001F\u007F-\u009F]/;
/** `gitCredential`: for private HTTPS repositories. Write-only; `null` removes it. */
export const GitCredentialSchema = z.strictObject({
  username: z
    .string({ error: "must be a string" })
    .min(1, { error: "must not be empty" })
    .max(256, { error: "must be at most 256 characters" })
    .refine((s) => !CONTROL.test(s) && !s.includes(":"), { error: "must not contain control characters or ':'" })
    .optional(),
  token: z
    .string({ error: "must be a string" })
    .min(1, { error: "is required" })
    .max(4096, { error: "must be at most 4096 characters" })
    .refine((s) => !CONTROL.test(s), { error: "must not contain control characters" }),
});
export type GitCredential = z.infer<typeof GitCredentialSchema>;

export const ResourcesSchema = z.strictObject({
  memoryMiB: z.number({ error: "must be a whole number" }).int({ error: "must be a whole number" }).min(64, { error: "must be at least 64" }).max(4_194_304, { error: "must be at most 4194304" }).optional(),
  cpus: z.number({ error: "must be a number" }).min(0.1, { error: "must be at least 0.1" }).max(1024, { error: "must be at most 1024" }).optional(),
});
export type Resources = z.infer<typeof ResourcesSchema>;

/** The path the port probe asks for: absolute, plain URL path characters only. */
export const HealthPathSchema = z
  .string({ error: "must be a string" })
  .max(512, { error: "must be at most 512 characters" })
  .regex(/^\/[A-Za-z0-9._~!&'()*+,;=:@%/?-]*$/, { error: "must be an absolute URL path such as /health (no spaces or control characters)" });

/** A secret a template asks for: shown in the Add App dialog; a required one must be given. */
export const DeclaredSecretSchema = z.strictObject({
  name: EnvNameSchema,
  description: z.string().min(1).max(300).refine((s) => !CONTROL.test(s), { error: "must not contain control characters" }),
  required: z.boolean().default(false),
});
export const DeclaredSecretsSchema = z.array(DeclaredSecretSchema).max(SECRET_MAX_COUNT);

// ---------------------------------------------------------------- registry credentials

/** A registry host as an image reference names it: `registry.example.com` or `host:5000`. */
export const RegistryHostSchema = z
  .string({ error: "must be a string" })
  .max(255, { error: "must be at most 255 characters" })
  .regex(/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$/, { error: "must be a registry host such as registry.example.com or host:5000" });

export const RegistryCredentialSchema = z.strictObject({
  host: RegistryHostSchema,
  username: z.string(str).min(1, { error: "is required" }).max(256).refine((s) => !CONTROL.test(s), { error: "must not contain control characters" }),
  password: z.string(str).min(1, { error: "is required" }).max(4096).refine((s) => !CONTROL.test(s), { error: "must not contain control characters" }),
});
export type RegistryCredential = z.infer<typeof RegistryCredentialSchema>;

/** The registry host of an image reference, as Docker decides it (none: Docker Hub). */
export function registryOf(image: string): string | null {
  const first = image.split("/")[0]!;
  if (!image.includes("/")) return null;
  return first.includes(".") || first.includes(":") || first === "localhost" ? first : null;
}

// ---------------------------------------------------------------- redaction

export const REDACTED = "***";

/**
 * Replaces every occurrence of a secret value in `text` with `***`. Longer values first, so a
 * value that contains another is hidden whole. Values shorter than 4 characters are not searched
 * (they would blank out ordinary words); the API refuses such secrets.
 */
export function redact(text: string, values: Iterable<string>): string {
  const list = [...new Set(values)].filter((v) => v.length >= 4).sort((a, b) => b.length - a.length);
  let out = text;
  for (const v of list) if (out.includes(v)) out = out.split(v).join(REDACTED);
  return out;
}
