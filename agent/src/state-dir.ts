// The agent's state directory: its Ed25519 key (agent-key.pem), its enrolment (identity.json:
// host id and the pinned console key) and the command journal. Files are 0600 in a 0700 folder
// and replaced atomically (write, fsync, rename, fsync the folder), so a crash leaves either the
// old or the new version, never half of one.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync, chmodSync } from "node:fs";
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { join } from "node:path";
import { z } from "zod";
import { IDENTITY_FILE, generateSigningKeyPair, HostIdSchema, publicKeyFromBase64 } from "./contract/protocol";

export const AGENT_KEY_FILE = "agent-key.pem";

export function ensureStateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function writeFileAtomic(path: string, data: string, mode = 0o600): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, "w", mode);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncDir(join(path, ".."));
}

function readIfExists(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
}

export interface AgentKey {
  privateKey: KeyObject;
  /** Base64 SPKI DER, the form the console stores. */
  publicKey: string;
}

/** The agent's own key pair, created on first start and kept for the life of the state dir. */
export function loadOrCreateAgentKey(dir: string): AgentKey {
  const path = join(dir, AGENT_KEY_FILE);
  let pem = readIfExists(path);
  if (pem === null) {
    pem = generateSigningKeyPair().privateKeyPem;
    writeFileAtomic(path, pem);
  }
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== "ed25519") throw new Error(`${path} is not an Ed25519 key`);
  const publicKey = createPublicKey(privateKey).export({ format: "der", type: "spki" }).toString("base64");
  return { privateKey, publicKey };
}

const IdentitySchema = z.object({
  hostId: HostIdSchema,
  consolePublicKey: z.string().min(1),
  consoleUrl: z.string(),
  enrolledAt: z.string(),
});
export type Identity = z.infer<typeof IdentitySchema>;

export function loadIdentity(dir: string): Identity | null {
  const text = readIfExists(join(dir, IDENTITY_FILE));
  if (text === null) return null;
  const identity = IdentitySchema.parse(JSON.parse(text));
  publicKeyFromBase64(identity.consolePublicKey);
  return identity;
}

export function saveIdentity(dir: string, identity: Identity): void {
  writeFileAtomic(join(dir, IDENTITY_FILE), JSON.stringify(identity, null, 2) + "\n");
}
