import { describe, expect, it } from "vitest";
import { AgentMessageSchema, parseMessage } from "./protocol";

const sha = "a".repeat(40);
const msg = (over: Record<string, unknown> = {}) =>
  JSON.stringify({ type: "dependencies", app: "comfy", commitSha: sha, manifests: ["requirements.txt"], packages: [{ name: "jinja2", version: "2.10", ecosystem: "PyPI", manifest: "requirements.txt" }], ...over });

describe("dependencies message", () => {
  it("is an agent message", () => {
    const r = parseMessage(AgentMessageSchema, msg());
    expect(r.ok && r.msg.type).toBe("dependencies");
  });

  it("refuses what the contract does not allow, naming where", () => {
    expect(parseMessage(AgentMessageSchema, msg({ commitSha: "main" }))).toMatchObject({ ok: false, error: expect.stringContaining("commitSha") });
    expect(parseMessage(AgentMessageSchema, msg({ packages: [{ name: "x", version: null, ecosystem: "cargo", manifest: "Cargo.lock" }] }))).toMatchObject({ ok: false, error: expect.stringContaining("packages.0.ecosystem") });
    expect(parseMessage(AgentMessageSchema, msg({ app: "../etc" }))).toMatchObject({ ok: false, error: expect.stringContaining("app") });
    expect(parseMessage(AgentMessageSchema, msg({ extra: 1 }))).toMatchObject({ ok: false });
  });
});
