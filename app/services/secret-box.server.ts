// Seals secrets the console must keep (webhook signing secrets) with AES-256-GCM under one console
// key: DCC_SECRET_KEY (any string of 32+ characters, hashed to 256 bits), else a random key
// generated once as secret.key (0600) under DCC_DATA_DIR. Console processes sharing a database
// must share the key. A sealed value is `v1:<base64 iv|tag|ciphertext>`; the plaintext never
// reaches a row, a log line or the audit trail.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { chmodSync, linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const SECRET_KEY_FILE = "secret.key";
const keys = new Map<string, Buffer>();

function keyFile(dataDir: string): Buffer {
  const path = join(dataDir, SECRET_KEY_FILE);
  try {
    return Buffer.from(readFileSync(path, "utf8").trim(), "base64");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  mkdirSync(dataDir, { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, randomBytes(32).toString("base64") + "\n", { mode: 0o600 });
  try {
    // link() refuses to replace: two processes starting at once end up with the same key.
    linkSync(tmp, path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  } finally {
    unlinkSync(tmp);
  }
  chmodSync(path, 0o600);
  return Buffer.from(readFileSync(path, "utf8").trim(), "base64");
}

export function secretKey(config: { dataDir: string; secretKey?: string }): Buffer {
  const id = config.secretKey ? `env:${createHash("sha256").update(config.secretKey).digest("hex")}` : `file:${config.dataDir}`;
  let key = keys.get(id);
  if (!key) {
    key = config.secretKey ? createHash("sha256").update(config.secretKey, "utf8").digest() : keyFile(config.dataDir);
    if (key.length !== 32) throw new Error(`${join(config.dataDir, SECRET_KEY_FILE)} does not hold a 256-bit key`);
    keys.set(id, key);
  }
  return key;
}

export function seal(key: Buffer, plaintext: string): string {
  const iv = randomBytes(12);
  const c = createCipheriv("aes-256-gcm", key, iv);
  const body = Buffer.concat([c.update(plaintext, "utf8"), c.final()]);
  return `v1:${Buffer.concat([iv, c.getAuthTag(), body]).toString("base64")}`;
}

/** Throws when the value was sealed under another key or altered. */
export function unseal(key: Buffer, sealed: string): string {
  if (!sealed.startsWith("v1:")) throw new Error("not a sealed value");
  const raw = Buffer.from(sealed.slice(3), "base64");
  const d = createDecipheriv("aes-256-gcm", key, raw.subarray(0, 12));
  d.setAuthTag(raw.subarray(12, 28));
  return Buffer.concat([d.update(raw.subarray(28)), d.final()]).toString("utf8");
}
