// The console's Ed25519 signing key: it signs every command and every connection challenge.
// Generated once, kept as console-signing-key.pem (0600) under DCC_DATA_DIR. Console processes
// that share one database must share this file, or agents would refuse the others' commands.
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { chmodSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { generateSigningKeyPair, publicKeyFingerprint } from "../../agent/src/contract/protocol";
import { readOrCreateKeyFile } from "./key-file.server";

export const CONSOLE_KEY_FILE = "console-signing-key.pem";

export interface ConsoleKey {
  privateKey: KeyObject;
  /** Base64 SPKI DER: what agents pin. */
  publicKey: string;
  fingerprint: string;
}

const loaded = new Map<string, ConsoleKey>();

/** The key under `dataDir`, created on first use; loaded once per process. */
export function consoleKey(dataDir: string): ConsoleKey {
  const hit = loaded.get(dataDir);
  if (hit) return hit;
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, CONSOLE_KEY_FILE);
  const privateKey = createPrivateKey(readOrCreateKeyFile(path, () => generateSigningKeyPair().privateKeyPem));
  chmodSync(path, 0o600);
  if (privateKey.asymmetricKeyType !== "ed25519") throw new Error(`${path} is not an Ed25519 private key`);
  const publicKey = createPublicKey(privateKey).export({ format: "der", type: "spki" }).toString("base64");
  const key = { privateKey, publicKey, fingerprint: publicKeyFingerprint(publicKey) };
  loaded.set(dataDir, key);
  return key;
}
