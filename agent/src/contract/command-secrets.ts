// The secret values a command needs, sent beside it and never inside it: the commands row (the
// outbox) holds only secret *names*; the console resolves the values when it sends the command and
// signs them separately, bound to the command id and host, with their own signature context (so a
// secrets blob can never pass as a command, nor travel with another command). The agent verifies
// the signature against the pinned console key and the binding before it uses a value, and never
// journals them.
import { sign, verify, type KeyObject } from "node:crypto";
import { z } from "zod";
import { EnvNameSchema, GitCredentialSchema, RegistryCredentialSchema, SECRET_MAX_COUNT, SecretValueSchema } from "./app-config";

const CTX_SECRETS = "dcc-command-secrets-v1\n";

export const CommandSecretsSchema = z.strictObject({
  commandId: z.string().min(1).max(64),
  hostId: z.string().min(1).max(64),
  /** App secrets by name: exported into the container's environment. */
  values: z.record(EnvNameSchema, SecretValueSchema).refine((o) => Object.keys(o).length <= SECRET_MAX_COUNT),
  /** For a private repository: given to git through its environment. */
  git: GitCredentialSchema.optional(),
  /** For a private image: the registry the command's image names. */
  registry: RegistryCredentialSchema.optional(),
});
export type CommandSecrets = z.infer<typeof CommandSecretsSchema>;

/** On the wire beside `payload`/`sig` of a command envelope. */
export const SecretsEnvelopeSchema = z.strictObject({
  payload: z.string().min(2).max(256 * 1024),
  sig: z.string().min(1).max(128).regex(/^[A-Za-z0-9+/]+={0,2}$/),
});
export type SecretsEnvelope = z.infer<typeof SecretsEnvelopeSchema>;

export function signCommandSecrets(secrets: CommandSecrets, consoleKey: KeyObject | string): SecretsEnvelope {
  const text = JSON.stringify(CommandSecretsSchema.parse(secrets));
  return { payload: text, sig: sign(null, Buffer.from(CTX_SECRETS + text, "utf8"), consoleKey).toString("base64") };
}

/** The values, or why they are refused. Never echoes a value in the reason. */
export function verifyCommandSecrets(
  env: SecretsEnvelope,
  consolePublicKey: KeyObject,
  expect: { commandId: string; hostId: string },
): { ok: true; secrets: CommandSecrets } | { ok: false; reason: string } {
  let good = false;
  try {
    good = verify(null, Buffer.from(CTX_SECRETS + env.payload, "utf8"), consolePublicKey, Buffer.from(env.sig, "base64"));
  } catch {
    good = false;
  }
  if (!good) return { ok: false, reason: "secrets signature does not verify against the pinned console key" };
  let json: unknown;
  try {
    json = JSON.parse(env.payload);
  } catch {
    return { ok: false, reason: "secrets are not JSON" };
  }
  const r = CommandSecretsSchema.safeParse(json);
  if (!r.success) return { ok: false, reason: `secrets are malformed at ${r.error.issues[0]?.path.join(".") || "top level"}` };
  if (r.data.commandId !== expect.commandId || r.data.hostId !== expect.hostId) return { ok: false, reason: "secrets belong to another command" };
  return { ok: true, secrets: r.data };
}

/** Every value a relay must hide for this bundle (app secrets and the git token). */
export function secretValuesOf(s: Pick<CommandSecrets, "values" | "git" | "registry"> | undefined): string[] {
  if (!s) return [];
  return [...Object.values(s.values), ...(s.git ? [s.git.token] : []), ...(s.registry ? [s.registry.password] : [])];
}
