import { describe, expect, it } from "vitest";
import { hmacHex, identifyForge, parsePush, verifyProof } from "./forge-webhooks";

const body = Buffer.from('{"ref":"refs/heads/main"}');
const secret = "whsec_test-secret-0123456789";

describe("forge webhooks", () => {
  it("tells the forges apart, Gitea first (it also sends GitHub's headers)", () => {
    expect(identifyForge({ "x-gitea-event": "push", "x-github-event": "push", "x-gitea-delivery": "d1" })?.forge).toBe("gitea");
    expect(identifyForge({ "x-gitlab-event": "Push Hook", "x-gitlab-event-uuid": "u1" })).toMatchObject({ forge: "gitlab", event: "push", deliveryId: "u1" });
    expect(identifyForge({ "x-github-event": "ping", "x-github-delivery": "g1" })).toMatchObject({ forge: "github", event: "ping" });
    expect(identifyForge({ "content-type": "application/json" })).toBeNull();
  });

  it("checks each forge's proof against the exact body", () => {
    const hex = hmacHex(secret, body);
    expect(verifyProof({ forge: "github", proof: `sha256=${hex}` }, secret, body)).toBe(true);
    expect(verifyProof({ forge: "github", proof: `sha256=${hex}` }, secret, Buffer.from(`${body} `))).toBe(false);
    expect(verifyProof({ forge: "github", proof: hex }, secret, body)).toBe(false);
    expect(verifyProof({ forge: "gitea", proof: hex }, secret, body)).toBe(true);
    expect(verifyProof({ forge: "gitea", proof: hmacHex("other", body) }, secret, body)).toBe(false);
    expect(verifyProof({ forge: "gitlab", proof: secret }, secret, body)).toBe(true);
    expect(verifyProof({ forge: "gitlab", proof: `${secret}x` }, secret, body)).toBe(false);
    expect(verifyProof({ forge: "github", proof: null }, secret, body)).toBe(false);
  });

  it("reads the branch, the default branch and deletions", () => {
    expect(parsePush("github", { ref: "refs/heads/main", after: "a".repeat(40), repository: { default_branch: "main" } })).toMatchObject({ branch: "main", defaultBranch: "main", deleted: false });
    expect(parsePush("gitlab", { ref: "refs/heads/dev", project: { default_branch: "main" } })).toMatchObject({ branch: "dev", defaultBranch: "main" });
    expect(parsePush("gitea", { ref: "refs/tags/v1", repository: {} }).branch).toBeNull();
    expect(parsePush("github", { ref: "refs/heads/main", after: "0".repeat(40), deleted: true }).deleted).toBe(true);
    expect(parsePush("github", null)).toMatchObject({ branch: null, defaultBranch: null });
  });
});
