import { createContext, useContext } from "react";

/** The per-response CSP nonce; set by entry.server, undefined in the browser (scripts are loaded by then). */
export const NonceContext = createContext<string | undefined>(undefined);

export function useNonce(): string | undefined {
  return useContext(NonceContext);
}
