// A private repository's credential reaches git only through its environment: a credential helper
// configured by GIT_CONFIG_COUNT/KEY/VALUE (command-level config, no file) whose fixed script
// prints the username and token from two variables. So the token is never in the URL, git's argv,
// the process list, .git/config or the workspace; git asks the helper only after the server
// answered 401, and only for that URL.
import type { GitCredential } from "../contract/app-config";
import { OpsError } from "./errors";

/** Fixed text: names variables, never a value. `get` is the only request it answers. */
const HELPER = `!f() { test "$1" = get || exit 0; printf 'username=%s\\npassword=%s\\n' "$DCC_GIT_USERNAME" "$DCC_GIT_TOKEN"; }; f`;

/** The variables to add to git's environment for `cred` (none without one). */
export function gitCredentialEnvironment(cred: GitCredential | undefined): Record<string, string> {
  if (!cred) return {};
  return {
    GIT_CONFIG_COUNT: "2",
    // An empty helper first clears any other (none are read anyway: no system or global config).
    GIT_CONFIG_KEY_0: "credential.helper",
    GIT_CONFIG_VALUE_0: "",
    GIT_CONFIG_KEY_1: "credential.helper",
    GIT_CONFIG_VALUE_1: HELPER,
    // Forges accept any username with a token; "git" is what they document for that case.
    DCC_GIT_USERNAME: cred.username ?? "git",
    DCC_GIT_TOKEN: cred.token,
  };
}

/**
 * git's output when the server wants credentials, in words an operator can act on: without a
 * credential it "needs credentials"; with one, the server "refused" it. null for other failures.
 */
export function gitAuthFailure(output: string, url: string, hadCredential: boolean, cause: unknown): OpsError | null {
  const asked = /could not read Username|could not read Password|terminal prompts disabled|Authentication failed|returned error: 401|HTTP Basic: Access denied/i.test(output);
  const forbidden = /returned error: 403|403 Forbidden/i.test(output);
  if (!asked && !forbidden) return null;
  if (!hadCredential) {
    return new OpsError("FAILED", `git could not fetch ${url}: the repository needs credentials (it is private): set a git credential (username and token) for the app`, { cause });
  }
  return new OpsError("FAILED", `git could not fetch ${url}: the server refused the app's git credentials (wrong username or token, or no access to this repository)`, { cause });
}
