// What an app's code is pinned to, and what its submodules and the repository host may be: the
// rules shared by the console (API input) and the agent (re-checked before git runs). A ref is
// only ever used inside a refspec or a pattern the agent builds (`refs/heads/<ref>`), never as an
// argument of its own, and these rules keep it from meaning anything but a name.
import { z } from "zod";
import { isForbiddenAddress, isLocalOrPrivate, repositoryProblem, type RepositoryRules } from "./validation";

export const GIT_REF_MAX = 200;
/** A full commit id (SHA-1, or SHA-256 for repositories that use it), lower case. */
export const COMMIT_SHA = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
export const isCommitSha = (ref: string) => COMMIT_SHA.test(ref);

/**
 * Returns null when `ref` is a branch name, tag name or full commit SHA, else why not. The rules
 * are git's check-ref-format for a short name, narrowed to an ASCII allow-list (no `:` that would
 * split a refspec, no `^ ~ ? * [ \` revision syntax, no `@{`), plus no leading `-`.
 */
export function gitRefProblem(ref: string): string | null {
  if (ref.length === 0) return "is required";
  if (ref.length > GIT_REF_MAX) return `must be at most ${GIT_REF_MAX} characters`;
  if (/[\u0000-\u001F\u007F-\u009F]/.test(ref)) return "must not contain control characters";
  if (ref.startsWith("-")) return "must not start with a hyphen";
  if (/^[0-9a-fA-F]{40}$|^[0-9a-fA-F]{64}$/.test(ref)) return isCommitSha(ref) ? null : "must be a lower-case commit SHA";
  if (/[^A-Za-z0-9._/+-]/.test(ref)) return "must be a branch or tag name (letters, digits and . _ / + -) or a full commit SHA";
  if (ref.includes("..")) return "must not contain ..";
  if (ref.startsWith("/") || ref.endsWith("/") || ref.includes("//")) return "must not start or end with / or contain //";
  if (ref.endsWith(".")) return "must not end with .";
  if (ref.split("/").some((part) => part.startsWith(".") || part.endsWith(".lock"))) return "must not have a part starting with . or ending with .lock";
  if (ref === "HEAD" || ref.startsWith("refs/")) return "must be a branch or tag name without refs/ (or a full commit SHA)";
  return null;
}

export const GitRefSchema = z.string({ error: (iss) => (iss.input === undefined ? "is required" : "must be a string") }).superRefine((value, ctx) => {
  const problem = gitRefProblem(value);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});

/** A commit to redeploy (apps.rollback): a full SHA only. */
export const CommitShaSchema = z
  .string({ error: (iss) => (iss.input === undefined ? "is required" : "must be a string") })
  .regex(COMMIT_SHA, { error: "must be a full lower-case commit SHA (40 hex digits)" });

/**
 * Addresses a repository host name resolved to: refused when any is link-local or a metadata
 * address (every mode), or loopback / private without the insecure switch. Null when acceptable.
 */
export function resolvedAddressProblem(host: string, addresses: string[], rules: Pick<RepositoryRules, "allowInsecure">): string | null {
  if (!addresses.length) return `host ${host} did not resolve to any address`;
  for (const address of addresses) {
    if (isForbiddenAddress(address.toLowerCase())) return `host ${host} resolves to a link-local or metadata address (${address})`;
    if (!rules.allowInsecure && isLocalOrPrivate(address.toLowerCase())) return `host ${host} resolves to a loopback or private address (${address})`;
  }
  return null;
}

/** Most submodules one repository may bring; more is refused rather than fetched. */
export const SUBMODULES_MAX = 32;

export interface SubmoduleEntry {
  /** The `<name>` of `submodule.<name>.*` in .gitmodules. */
  name: string;
  path: string | undefined;
  url: string | undefined;
}

/**
 * A submodule's URL and path, checked as the repository's own URL is: relative URLs (`./x`,
 * `../x`) resolved against the repository URL first, the result then passing every repository
 * rule (https, public host, no credentials, no file: or ext::). Returns the absolute URL and path,
 * or a problem naming the submodule.
 */
export function checkSubmodule(entry: SubmoduleEntry, repository: string, rules: RepositoryRules): { url: string; path: string } | { problem: string } {
  const label = `submodule ${JSON.stringify(entry.name.slice(0, 100))}`;
  if (!entry.name || entry.name.length > 200 || /[\u0000-\u001F\u007F-\u009F]/.test(entry.name)) return { problem: `${label}: its name is not acceptable` };
  const path = entry.path;
  if (!path) return { problem: `${label}: has no path` };
  if (path.length > 255 || !/^[A-Za-z0-9._@+-]+(\/[A-Za-z0-9._@+-]+)*$/.test(path)) return { problem: `${label}: path ${JSON.stringify(path.slice(0, 100))} is not a plain relative path` };
  if (path.split("/").some((seg) => seg === "." || seg === ".." || seg.toLowerCase() === ".git" || seg.startsWith("-"))) {
    return { problem: `${label}: path ${JSON.stringify(path)} must not contain ., .., .git or option-like segments` };
  }
  const raw = entry.url;
  if (!raw) return { problem: `${label}: has no url` };
  let url = raw;
  if (raw.startsWith("./") || raw.startsWith("../")) {
    if (raw.length > 2048 || /[^A-Za-z0-9._~%/@+-]/.test(raw)) return { problem: `${label}: url ${JSON.stringify(raw.slice(0, 200))} is not acceptable` };
    // git resolves a relative URL against the superproject's URL taken as a folder.
    url = new URL(raw, `${repository.replace(/\/+$/, "")}/`).href;
  }
  const problem = repositoryProblem(url, rules);
  if (problem) return { problem: `${label}: url ${JSON.stringify(raw.slice(0, 200))} ${problem}` };
  return { url, path };
}
