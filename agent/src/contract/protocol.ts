// The agent channel's wire contract: protocol version, every message in both directions (zod),
// close codes, and Ed25519 signing. Commands are signed over their exact serialized bytes: the
// console sends the payload string with its signature, the agent verifies those bytes and only
// then parses them, so no re-serialization can change what was signed.
//
// One websocket (the agent dials /agent; JSON text frames, at most MAX_MESSAGE_BYTES):
//   console → challenge {nonce, sig: console key over the nonce}
//   agent   → auth {hostId, sig: agent key over nonce + hostId}, then hello {protocol, facts, inventory}
//     or, once, enroll {token, publicKey, sig: proof of possession}; console → enrolled {hostId,
//     consolePublicKey}; the agent pins that key (checking --console-fingerprint when given) and
//     sends hello on the same socket
//   console → welcome; then command {payload, sig}* ; agent → ack, progress*, result | refused;
//   agent → status / usage / log reports at any time; facts {facts} every minute (GPU ledger, store sizes); dependencies {app, commitSha, packages} after a
//   deploy at a new commit (./dependencies.ts). ws-level ping/pong keeps it alive.
//   console → logs {requestId, app, tail, follow?}; agent → log {requestId, lines}* … {done: true};
//   console → logs-stop {requestId} ends a follow.
//   agent → gateway-token {requestId, app, tokenHash}; console → gateway-token-answer {requestId, ok}
//   (an API token presented at the host's gateway, see ./gateway.ts).
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from "node:crypto";
import { z } from "zod";
import { SecretsEnvelopeSchema } from "./command-secrets";
import { DependenciesMessageSchema } from "./dependencies";
// ---- gateway: API-token checks for the host's gateway (request from the agent, answer from the console)
import { GatewayTokenAnswerSchema, GatewayTokenCheckSchema } from "./gateway";
// ---- end gateway
import { HostFactsSchema } from "./facts";
import { InventoryItemSchema, LogLineSchema, ProgressSchema, StatusReportSchema, UsageSampleSchema } from "./reports";
import { APP_ACTIONS } from "./spec";
import { AppNameSchema, ImageSchema } from "./validation";

export const PROTOCOL_VERSION = 1;

/** Largest websocket message either side accepts (`maxPayload` on both ends). */
export const MAX_MESSAGE_BYTES = 1024 * 1024;
/** How often the console pings each agent; a peer that misses one pong is dropped (within 2 intervals, < 30 s). */
export const PING_INTERVAL_MS = 12_000;
/** The file in an agent's state dir that exists once it is enrolled (the console's local agent checks it). */
export const IDENTITY_FILE = "identity.json";

/** Close codes; 1009 (too big) comes from ws itself when `maxPayload` is exceeded. */
export const CLOSE = {
  goingAway: 1001,
  unsupportedData: 1003,
  tooBig: 1009,
  protocolError: 4000,
  authFailed: 4001,
  enrollRefused: 4002,
  revoked: 4003,
  unknownHost: 4004,
  versionMismatch: 4005,
  authTimeout: 4008,
  replaced: 4009,
} as const;

/** Close codes after which retrying with the same identity cannot succeed. */
export const FATAL_CLOSE_CODES: ReadonlySet<number> = new Set([
  CLOSE.authFailed,
  CLOSE.enrollRefused,
  CLOSE.revoked,
  CLOSE.unknownHost,
  CLOSE.versionMismatch,
]);

/** Close reasons are at most 123 bytes on the wire. */
export function closeReason(text: string): string {
  let s = text.replace(/[\r\n]+/g, " ");
  while (Buffer.byteLength(s) > 123) s = s.slice(0, -2);
  return s;
}

// ---------------------------------------------------------------------------------------------
// Field shapes

export const HostIdSchema = z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/);
export const CommandIdSchema = z.string().min(1).max(64).regex(/^[A-Za-z0-9-]+$/);
const Iso = z.string().max(40).refine((s) => !Number.isNaN(Date.parse(s)), { error: "must be an ISO date" });
const Base64 = (max: number) => z.string().min(1).max(max).regex(/^[A-Za-z0-9+/]+={0,2}$/);
const Signature = Base64(128);
const PublicKeyB64 = Base64(200);
const Nonce = Base64(64);

/**
 * Lifecycle actions name an app; `cancel` names an app and the command to stop (it never waits in
 * the app's queue); `ping`, `cleanup` (orphans, see ./cleanup.ts) and `prepull` are host-wide (app null).
 */
export const COMMAND_ACTIONS = [...APP_ACTIONS, "cancel", "ping", "cleanup", "prepull"] as const;
export type CommandAction = (typeof COMMAND_ACTIONS)[number];
/** The actions that name no app. */
export const HOST_ACTIONS = ["ping", "cleanup", "prepull"] as const;
export type HostAction = (typeof HOST_ACTIONS)[number];

/**
 * Puts an image on the host before any app needs it (a multi-GB base image on a fresh GPU box):
 * pulled with `progress` reports (bytes, percent, layer) unless it is already there.
 */
export const PrepullParamsSchema = z.strictObject({
  image: ImageSchema,
});

/** The built-in harmless action: waits `delayMs` and echoes; used by tests and benchmarks. */
export const PingParamsSchema = z.strictObject({
  delayMs: z.number().int().min(0).max(60_000).optional(),
  echo: z.string().max(200).optional(),
});

/** Stops a queued or running command of the same app (a deploy, say); answered at once. */
export const CancelParamsSchema = z.strictObject({
  commandId: CommandIdSchema,
});

/**
 * What the console signs: one command for one host, valid (deliverable) until `expiresAt`. Once it
 * runs, the agent gives up at `deadlineAt` (the action is aborted and answered as failed), so a
 * command never stays unanswered while its agent is connected.
 */
export const CommandPayloadSchema = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  id: CommandIdSchema,
  hostId: HostIdSchema,
  app: AppNameSchema.nullable(),
  action: z.enum(COMMAND_ACTIONS),
  params: z.record(z.string(), z.unknown()),
  issuedAt: Iso,
  expiresAt: Iso,
  deadlineAt: Iso.optional(),
});
export type CommandPayload = z.infer<typeof CommandPayloadSchema>;

// ---------------------------------------------------------------------------------------------
// Console → agent

export const ChallengeSchema = z.strictObject({
  type: z.literal("challenge"),
  protocol: z.number().int(),
  nonce: Nonce,
  /** The console's signature over the nonce, so an enrolled agent knows whom it talks to. */
  sig: Signature,
});
export const EnrolledSchema = z.strictObject({
  type: z.literal("enrolled"),
  hostId: HostIdSchema,
  consolePublicKey: PublicKeyB64,
});
export const WelcomeSchema = z.strictObject({
  type: z.literal("welcome"),
  hostId: HostIdSchema,
  pingIntervalMs: z.number().int().min(1000).max(300_000),
});
export const CommandEnvelopeSchema = z.strictObject({
  type: z.literal("command"),
  /** The exact signed bytes (JSON of a CommandPayload). */
  payload: z.string().min(2).max(256 * 1024),
  sig: Signature,
  /** The secret values the command needs, signed apart and bound to it (./command-secrets.ts). */
  secrets: SecretsEnvelopeSchema.optional(),
});
/** The app's last `tail` log lines; with `follow`, then its live lines until `logs-stop`. Answered by `log` messages with the same requestId. */
export const LogsRequestSchema = z.strictObject({
  type: z.literal("logs"),
  requestId: CommandIdSchema,
  app: AppNameSchema,
  tail: z.number().int().min(0).max(5000),
  follow: z.boolean().optional(),
});
/** Ends a follow (its viewer went away). The agent also ends every follow when the socket drops. */
export const LogsStopSchema = z.strictObject({
  type: z.literal("logs-stop"),
  requestId: CommandIdSchema,
});

export const ConsoleMessageSchema = z.discriminatedUnion("type", [
  ChallengeSchema,
  EnrolledSchema,
  WelcomeSchema,
  CommandEnvelopeSchema,
  LogsRequestSchema,
  LogsStopSchema,
  // ---- gateway
  GatewayTokenAnswerSchema,
  // ---- end gateway
]);
export type ConsoleMessage = z.infer<typeof ConsoleMessageSchema>;
export type CommandEnvelope = z.infer<typeof CommandEnvelopeSchema>;

// ---------------------------------------------------------------------------------------------
// Agent → console

export const AuthSchema = z.strictObject({
  type: z.literal("auth"),
  hostId: HostIdSchema,
  sig: Signature,
});
export const EnrollSchema = z.strictObject({
  type: z.literal("enroll"),
  token: z.string().min(16).max(128).regex(/^[A-Za-z0-9_-]+$/),
  publicKey: PublicKeyB64,
  name: z.string().min(1).max(253).regex(/^[A-Za-z0-9._-]+$/).optional(),
  /** Proof of possession: the agent's signature over the challenge and its public key. */
  sig: Signature,
});
export const HelloSchema = z.strictObject({
  type: z.literal("hello"),
  protocol: z.number().int(),
  agentVersion: z.string().max(64),
  facts: HostFactsSchema,
  inventory: z.array(InventoryItemSchema).max(2000),
});
export const AckSchema = z.strictObject({
  type: z.literal("ack"),
  id: CommandIdSchema,
  /** True when the agent had already seen this command (re-delivery) and did not run it again. */
  duplicate: z.boolean().optional(),
});
export const ProgressMessageSchema = z.strictObject({
  type: z.literal("progress"),
  id: CommandIdSchema,
  progress: ProgressSchema,
});
export const ResultSchema = z.strictObject({
  type: z.literal("result"),
  id: CommandIdSchema,
  ok: z.boolean(),
  result: z.record(z.string(), z.unknown()).optional(),
  error: z.string().max(4000).optional(),
  /**
   * The agent's observation of the command's app when the answer is sent (Docker state + probe),
   * on success, no-op and failure alike: the console takes the app's status from it. Absent for
   * host-wide commands and for an app that is no longer installed after a deinstall.
   */
  observed: StatusReportSchema.optional(),
});
export const REFUSAL_CODES = ["bad-signature", "malformed", "wrong-host", "expired", "replay-mismatch", "invalid-params"] as const;
export type RefusalCode = (typeof REFUSAL_CODES)[number];
export const RefusedSchema = z.strictObject({
  type: z.literal("refused"),
  /** Absent when the command could not even be read. */
  id: CommandIdSchema.optional(),
  code: z.enum(REFUSAL_CODES),
  reason: z.string().max(1000),
});
export const StatusMessageSchema = z.strictObject({
  type: z.literal("status"),
  reports: z.array(StatusReportSchema).min(1).max(500),
});
export const UsageMessageSchema = z.strictObject({
  type: z.literal("usage"),
  samples: z.array(UsageSampleSchema).min(1).max(500),
});
export const LogMessageSchema = z.strictObject({
  type: z.literal("log"),
  requestId: CommandIdSchema.optional(),
  lines: z.array(LogLineSchema).max(500),
  error: z.string().max(1000).optional(),
  /** The request's last message: a tail is complete, or a follow ended (error says why when it failed). */
  done: z.boolean().optional(),
});

// ---- host facts again (GPU ledger, preflight, model store sizes change while the agent runs)
export const FactsMessageSchema = z.strictObject({
  type: z.literal("facts"),
  facts: HostFactsSchema,
});
// ---- end

export const AgentMessageSchema = z.discriminatedUnion("type", [
  AuthSchema,
  EnrollSchema,
  HelloSchema,
  AckSchema,
  ProgressMessageSchema,
  ResultSchema,
  RefusedSchema,
  StatusMessageSchema,
  UsageMessageSchema,
  LogMessageSchema,
  DependenciesMessageSchema,
  FactsMessageSchema,
  // ---- gateway
  GatewayTokenCheckSchema,
  // ---- end gateway
]);
export type AgentMessage = z.infer<typeof AgentMessageSchema>;
export type HelloMessage = z.infer<typeof HelloSchema>;

/** Parses one websocket text frame; the error names what was wrong, for the close reason. */
export function parseMessage<S extends z.ZodType>(schema: S, raw: string): { ok: true; msg: z.infer<S> } | { ok: false; error: string } {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return { ok: false, error: "malformed message: not JSON" };
  }
  const r = schema.safeParse(json);
  if (r.success) return { ok: true, msg: r.data };
  const issue = r.error.issues[0];
  const where = issue.path.length ? issue.path.join(".") : "message";
  return { ok: false, error: `malformed message: ${where}: ${issue.message}` };
}

// ---------------------------------------------------------------------------------------------
// Keys and signatures (Ed25519 through node:crypto). Public keys travel as base64 SPKI DER.
// Each signature starts with its own context string, so one kind can never pass as another.

const CTX_COMMAND = "dcc-command-v1\n";
const CTX_CHALLENGE = "dcc-challenge-v1\n";
const CTX_AUTH = "dcc-auth-v1\n";
const CTX_ENROLL = "dcc-enroll-v1\n";

export interface SigningKeyPair {
  privateKeyPem: string;
  publicKey: string;
}

export function generateSigningKeyPair(): SigningKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return {
    privateKeyPem: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
    publicKey: publicKey.export({ format: "der", type: "spki" }).toString("base64"),
  };
}

/** Reads a base64 SPKI public key; throws unless it is an Ed25519 key. */
export function publicKeyFromBase64(b64: string): KeyObject {
  const key = createPublicKey({ key: Buffer.from(b64, "base64"), format: "der", type: "spki" });
  if (key.asymmetricKeyType !== "ed25519") throw new Error("not an Ed25519 public key");
  return key;
}

export function tryPublicKey(b64: string): KeyObject | null {
  try {
    return publicKeyFromBase64(b64);
  } catch {
    return null;
  }
}

/** `SHA256:<base64>` of the DER key, the form shown to an operator to compare. */
export function publicKeyFingerprint(b64: string): string {
  return "SHA256:" + createHash("sha256").update(Buffer.from(b64, "base64")).digest("base64").replace(/=+$/, "");
}

export function newNonce(): string {
  return randomBytes(32).toString("base64");
}

function signText(text: string, key: KeyObject | string): string {
  return sign(null, Buffer.from(text, "utf8"), key).toString("base64");
}

function verifyText(text: string, sig: string, key: KeyObject): boolean {
  try {
    return verify(null, Buffer.from(text, "utf8"), key, Buffer.from(sig, "base64"));
  } catch {
    return false;
  }
}

/** Serializes a command once and signs exactly those bytes. */
export function signCommand(payload: CommandPayload, consoleKey: KeyObject | string): CommandEnvelope {
  const text = JSON.stringify(CommandPayloadSchema.parse(payload));
  return { type: "command", payload: text, sig: signText(CTX_COMMAND + text, consoleKey) };
}

export type CommandCheck =
  | { ok: true; payload: CommandPayload }
  | { ok: false; code: "bad-signature" | "malformed"; reason: string; id?: string };

/** Verifies the signature over the exact payload bytes, then parses them. Nothing else is trusted. */
export function verifyCommand(env: Pick<CommandEnvelope, "payload" | "sig">, consolePublicKey: KeyObject): CommandCheck {
  if (!verifyText(CTX_COMMAND + env.payload, env.sig, consolePublicKey)) {
    return { ok: false, code: "bad-signature", reason: "signature does not verify against the pinned console key" };
  }
  const parsed = parseMessage(CommandPayloadSchema, env.payload);
  if (!parsed.ok) return { ok: false, code: "malformed", reason: parsed.error.replace("malformed message", "malformed command") };
  return { ok: true, payload: parsed.msg };
}

export const signChallenge = (nonce: string, consoleKey: KeyObject | string) => signText(CTX_CHALLENGE + nonce, consoleKey);
export const verifyChallenge = (nonce: string, sig: string, consolePublicKey: KeyObject) => verifyText(CTX_CHALLENGE + nonce, sig, consolePublicKey);

export const signAuth = (nonce: string, hostId: string, agentKey: KeyObject | string) => signText(`${CTX_AUTH}${nonce}\n${hostId}`, agentKey);
export const verifyAuth = (nonce: string, hostId: string, sig: string, agentPublicKey: KeyObject) =>
  verifyText(`${CTX_AUTH}${nonce}\n${hostId}`, sig, agentPublicKey);

export const signEnroll = (nonce: string, publicKey: string, agentKey: KeyObject | string) => signText(`${CTX_ENROLL}${nonce}\n${publicKey}`, agentKey);
export const verifyEnroll = (nonce: string, publicKey: string, sig: string, agentPublicKey: KeyObject) =>
  verifyText(`${CTX_ENROLL}${nonce}\n${publicKey}`, sig, agentPublicKey);
