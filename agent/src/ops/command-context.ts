// The secrets of the command being run, available to the code deep inside it (git's credential,
// a registry login for a pull) without threading them through every action's signature. Held in
// an AsyncLocalStorage for the duration of one command's handler only.
import { AsyncLocalStorage } from "node:async_hooks";
import type { CommandSecrets } from "../contract/command-secrets";
import type { GitCredential, RegistryCredential } from "../contract/app-config";

const current = new AsyncLocalStorage<CommandSecrets | undefined>();

export function withCommandSecrets<T>(secrets: CommandSecrets | undefined, fn: () => Promise<T>): Promise<T> {
  return current.run(secrets, fn);
}

/** The git credential of the running command, if it carries one. */
export function commandGitCredential(): GitCredential | undefined {
  return current.getStore()?.git;
}

/** The registry credential of the running command, when it is for `host`. */
export function commandRegistryCredential(host: string | null): RegistryCredential | undefined {
  const r = current.getStore()?.registry;
  return r && host && r.host === host ? r : undefined;
}
