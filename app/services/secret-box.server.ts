// Secrets at rest: AES-256-GCM under the console's secret key (DCC_SECRET_KEY, else `secret.key`
// generated once under DCC_DATA_DIR with mode 0600). Each sealed value is bound to a purpose
// (e.g. `webhook:<app id>`), so a sealed value copied into another row does not open there.
// Console processes that share a database must share this key.
import { chmodSync, mkdirSync, statSync } from "node:fs";
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { join } from "node:path";
import type { Config } from "../config.server";
import { readOrCreateKeyFile } from "./key-file.server";

export const SECRET_KEY_FILE = "secret.key";
const keys = new Map<string, Buffer>();

/** The 32-byte key: SHA-256 of DCC_SECRET_KEY, or of the generated key file. */
export function secretKey(config: Pick<Config, "secretKey" | "dataDir">): Buffer {
  const cacheKey = config.secretKey ? `env:${config.secretKey}` : `file:${config.dataDir}`;
  let key = keys.get(cacheKey);
  if (key) return key;
  let material = config.secretKey;
  if (!material) {
    mkdirSync(config.dataDir, { recursive: true });
    const path = join(config.dataDir, SECRET_KEY_FILE);
    material = readOrCreateKeyFile(path, () => `${randomBytes(32).toString("base64url")}\n`).trim();
    if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
    if (material.length < 32) throw new Error(`${path} holds too short a key`);
  }
  key = createHash("sha256").update(material, "utf8").digest();
  keys.set(cacheKey, key);
  return key;
}

/** `v1.<iv>.<ciphertext>.<tag>` (base64url). */
export function seal(key: Buffer, purpose: string, plaintext: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(Buffer.from(purpose, "utf8"));
  const ct = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
  return ["v1", iv.toString("base64url"), ct.toString("base64url"), cipher.getAuthTag().toString("base64url")].join(".");
}

/** The plaintext, or null when the value was sealed with another key or purpose, or altered. */
export function open(key: Buffer, purpose: string, sealed: string): string | null {
  const [v, iv, ct, tag] = sealed.split(".");
  if (v !== "v1" || !iv || ct === undefined || !tag) return null;
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "base64url"));
    decipher.setAAD(Buffer.from(purpose, "utf8"));
    decipher.setAuthTag(Buffer.from(tag, "base64url"));
    return Buffer.concat([decipher.update(Buffer.from(ct, "base64url")), decipher.final()]).toString("utf8");
  } catch {
    return null;
  }
}

/** Like `open`, for callers that cannot go on without the value: throws instead of null. */
export function unseal(key: Buffer, purpose: string, sealed: string): string {
  const plain = open(key, purpose, sealed);
  if (plain === null) throw new Error(`a sealed ${purpose.split(":")[0]} value does not open with this console's key (was DCC_SECRET_KEY changed?)`);
  return plain;
}
