// Browser forms send strings: the Environment, Secrets and Git credential sections of the Add App
// dialog and the app page turn into the API's `env`, `secrets` and `gitCredential` here, explicitly,
// before the API's strict rules apply (nothing is trimmed). A secret row with an empty value is
// left out (not set); a name is kept exactly as typed, so a bad one is named by the API.

/** Rows of `<prefix>Name` / `<prefix>Value` pairs, in order. */
function pairs(form: FormData, prefix: string): [string, string][] {
  const names = form.getAll(`${prefix}Name`).map(String);
  const values = form.getAll(`${prefix}Value`).map(String);
  return names.map((n, i) => [n, values[i] ?? ""]);
}

/** `env` from the form, or undefined when it has no environment rows at all. */
export function envFromForm(form: FormData): Record<string, string> | undefined {
  if (!form.has("envName")) return undefined;
  const env: Record<string, string> = {};
  for (const [n, v] of pairs(form, "env")) if (n !== "" || v !== "") env[n] = v;
  return env;
}

/** `secrets` from the form: rows with a value set or replace; `secretRemove` names remove. */
export function secretsFromForm(form: FormData): Record<string, string | null> | undefined {
  const out: Record<string, string | null> = {};
  for (const [n, v] of pairs(form, "secret")) if (v !== "") out[n] = v;
  for (const n of form.getAll("secretRemove").map(String)) if (n !== "") out[n] = null;
  return Object.keys(out).length ? out : undefined;
}

/** `gitCredential` from the form: a token sets it (username optional); `gitRemove` removes it. */
export function gitCredentialFromForm(form: FormData): { username?: string; token: string } | null | undefined {
  if (form.get("gitRemove") === "on") return null;
  const token = form.get("gitToken");
  if (typeof token !== "string" || token === "") return undefined;
  const username = form.get("gitUsername");
  return typeof username === "string" && username !== "" ? { username, token } : { token };
}

/** All three at once, leaving out what the form did not give. */
export function configFromForm(form: FormData): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const env = envFromForm(form);
  const secrets = secretsFromForm(form);
  const git = gitCredentialFromForm(form);
  if (env !== undefined) out.env = env;
  if (secrets !== undefined) out.secrets = secrets;
  if (git !== undefined) out.gitCredential = git;
  return out;
}

/** Field errors under `env…`, `secrets…` or `gitCredential…`, for the section that shows them. */
export function sectionErrors(errors: Record<string, string>, section: "env" | "secrets" | "gitCredential"): [string, string][] {
  return Object.entries(errors).filter(([k]) => k === section || k.startsWith(`${section}.`));
}
