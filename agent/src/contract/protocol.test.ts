import { createPrivateKey } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  AgentMessageSchema,
  CLOSE,
  ConsoleMessageSchema,
  FATAL_CLOSE_CODES,
  closeReason,
  generateSigningKeyPair,
  newNonce,
  parseMessage,
  publicKeyFingerprint,
  publicKeyFromBase64,
  signAuth,
  signChallenge,
  signCommand,
  signEnroll,
  verifyAuth,
  verifyChallenge,
  verifyCommand,
  verifyEnroll,
  type CommandPayload,
} from "./protocol";

const consoleKeys = generateSigningKeyPair();
const consolePriv = createPrivateKey(consoleKeys.privateKeyPem);
const consolePub = publicKeyFromBase64(consoleKeys.publicKey);
const otherKeys = generateSigningKeyPair();

const payload: CommandPayload = {
  v: 1,
  id: "0b7c3c2e-1111-4222-8333-444455556666",
  hostId: "host-a",
  app: "webui",
  action: "start",
  params: {},
  issuedAt: "2026-01-01T00:00:00.000Z",
  expiresAt: "2026-01-02T00:00:00.000Z",
};

describe("command signatures", () => {
  it("verifies the exact signed bytes and returns the parsed payload", () => {
    const env = signCommand(payload, consolePriv);
    const r = verifyCommand(env, consolePub);
    expect(r).toEqual({ ok: true, payload });
  });

  it("refuses a command signed with another key", () => {
    const env = signCommand(payload, createPrivateKey(otherKeys.privateKeyPem));
    expect(verifyCommand(env, consolePub)).toMatchObject({ ok: false, code: "bad-signature" });
  });

  it("refuses any change to the payload bytes, even one that parses to the same object", () => {
    const env = signCommand(payload, consolePriv);
    const retargeted = env.payload.replace('"host-a"', '"host-b"');
    expect(verifyCommand({ ...env, payload: retargeted }, consolePub)).toMatchObject({ ok: false, code: "bad-signature" });
    const reformatted = JSON.stringify(JSON.parse(env.payload), null, 1);
    expect(verifyCommand({ ...env, payload: reformatted }, consolePub)).toMatchObject({ ok: false, code: "bad-signature" });
  });

  it("does not accept a challenge signature as a command signature (separate contexts)", () => {
    const text = JSON.stringify(payload);
    const sig = signChallenge(text, consolePriv);
    expect(verifyCommand({ payload: text, sig }, consolePub)).toMatchObject({ ok: false, code: "bad-signature" });
  });

  it("refuses to sign a payload outside the schema", () => {
    expect(() => signCommand({ ...payload, action: "rm -rf" as never }, consolePriv)).toThrow();
    expect(() => signCommand({ ...payload, app: "../etc" }, consolePriv)).toThrow();
  });
});

describe("handshake signatures", () => {
  it("binds the agent's auth signature to nonce and host id", () => {
    const agent = generateSigningKeyPair();
    const priv = createPrivateKey(agent.privateKeyPem);
    const pub = publicKeyFromBase64(agent.publicKey);
    const nonce = newNonce();
    const sig = signAuth(nonce, "host-a", priv);
    expect(verifyAuth(nonce, "host-a", sig, pub)).toBe(true);
    expect(verifyAuth(nonce, "host-b", sig, pub)).toBe(false);
    expect(verifyAuth(newNonce(), "host-a", sig, pub)).toBe(false);
    expect(verifyAuth(nonce, "host-a", sig, consolePub)).toBe(false);
  });

  it("binds the enrol proof to the nonce and the presented key", () => {
    const agent = generateSigningKeyPair();
    const nonce = newNonce();
    const sig = signEnroll(nonce, agent.publicKey, createPrivateKey(agent.privateKeyPem));
    expect(verifyEnroll(nonce, agent.publicKey, sig, publicKeyFromBase64(agent.publicKey))).toBe(true);
    expect(verifyEnroll(nonce, otherKeys.publicKey, sig, publicKeyFromBase64(otherKeys.publicKey))).toBe(false);
  });

  it("lets an agent check the console's challenge against the pinned key", () => {
    const nonce = newNonce();
    const sig = signChallenge(nonce, consolePriv);
    expect(verifyChallenge(nonce, sig, consolePub)).toBe(true);
    expect(verifyChallenge(nonce, sig, publicKeyFromBase64(otherKeys.publicKey))).toBe(false);
  });

  it("accepts only Ed25519 public keys and fingerprints them stably", () => {
    expect(() => publicKeyFromBase64("AAAA")).toThrow();
    expect(publicKeyFingerprint(consoleKeys.publicKey)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(publicKeyFingerprint(consoleKeys.publicKey)).toBe(publicKeyFingerprint(consoleKeys.publicKey));
    expect(publicKeyFingerprint(consoleKeys.publicKey)).not.toBe(publicKeyFingerprint(otherKeys.publicKey));
  });
});

describe("message schemas", () => {
  it("parses a hello with facts and inventory", () => {
    const r = parseMessage(
      AgentMessageSchema,
      JSON.stringify({
        type: "hello",
        protocol: 1,
        agentVersion: "0.1.0",
        facts: { docker: { version: "20.10.24", apiVersion: "1.41" }, compose: { variant: "standalone", version: "1.29.2" } },
        inventory: [{ app: "webui", appId: "a1", commitSha: null, containerState: "running", status: "RUNNING" }],
      }),
    );
    expect(r.ok).toBe(true);
  });

  it.each([
    ["not JSON", "{nope", /not JSON/],
    ["an unknown type", JSON.stringify({ type: "exec", cmd: "id" }), /type/],
    ["extra fields", JSON.stringify({ type: "ack", id: "c1", extra: 1 }), /message/],
    ["a bad app name in a report", JSON.stringify({ type: "status", reports: [{ app: "../x", status: "RUNNING", health: "reachable", at: "t" }] }), /reports\.0\.app/],
    ["a status outside the enum", JSON.stringify({ type: "status", reports: [{ app: "x", status: "DEAD", health: "reachable", at: "t" }] }), /status/],
    ["an empty report batch", JSON.stringify({ type: "usage", samples: [] }), /samples/],
    ["a command id with odd characters", JSON.stringify({ type: "ack", id: "a b" }), /id/],
  ])("refuses %s with a readable reason", (_what, raw, reason) => {
    const r = parseMessage(AgentMessageSchema, raw);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(reason);
  });

  it("carries log requests (tail or follow), their stop, and answers that say when they are done", () => {
    const ok = (schema: typeof AgentMessageSchema | typeof ConsoleMessageSchema, m: unknown) => parseMessage(schema, JSON.stringify(m)).ok;
    expect(ok(ConsoleMessageSchema, { type: "logs", requestId: "r1", app: "webui", tail: 200 })).toBe(true);
    expect(ok(ConsoleMessageSchema, { type: "logs", requestId: "r1", app: "webui", tail: 0, follow: true })).toBe(true);
    expect(ok(ConsoleMessageSchema, { type: "logs-stop", requestId: "r1" })).toBe(true);
    expect(ok(AgentMessageSchema, { type: "log", requestId: "r1", lines: [], done: true, error: "no container" })).toBe(true);
    // By app name only, bounded, and nothing else.
    expect(ok(ConsoleMessageSchema, { type: "logs", requestId: "r1", app: "../etc", tail: 10 })).toBe(false);
    expect(ok(ConsoleMessageSchema, { type: "logs", requestId: "r1", app: "webui", tail: 5001 })).toBe(false);
    expect(ok(ConsoleMessageSchema, { type: "logs", requestId: "r1", app: "webui", tail: 10, path: "/var/log" })).toBe(false);
    expect(ok(ConsoleMessageSchema, { type: "logs-stop", requestId: "r 1" })).toBe(false);
    expect(ok(AgentMessageSchema, { type: "log", requestId: "r1", lines: Array(501).fill({ app: "webui", stream: "stdout", line: "x", at: "t" }) })).toBe(false);
  });

  it("does not let an agent send console messages or vice versa", () => {
    expect(parseMessage(AgentMessageSchema, JSON.stringify({ type: "command", payload: "{}", sig: "AA==" })).ok).toBe(false);
    expect(parseMessage(ConsoleMessageSchema, JSON.stringify({ type: "result", id: "c1", ok: true })).ok).toBe(false);
  });

  it("caps close reasons at the 123 bytes the websocket frame allows", () => {
    expect(Buffer.byteLength(closeReason("é".repeat(200)))).toBeLessThanOrEqual(123);
    expect(closeReason("a\nb")).toBe("a b");
  });

  it("treats auth and revocation closes as final, transient ones not", () => {
    expect(FATAL_CLOSE_CODES.has(CLOSE.revoked)).toBe(true);
    expect(FATAL_CLOSE_CODES.has(CLOSE.enrollRefused)).toBe(true);
    expect(FATAL_CLOSE_CODES.has(CLOSE.goingAway)).toBe(false);
    expect(FATAL_CLOSE_CODES.has(CLOSE.replaced)).toBe(false);
    expect(FATAL_CLOSE_CODES.has(CLOSE.tooBig)).toBe(false);
  });
});
