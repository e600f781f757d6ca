// What GitHub, GitLab and Gitea send to a deploy webhook, and how each proves it knows the secret:
// GitHub `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`, Gitea
// `X-Gitea-Signature: <hex HMAC-SHA256 of the raw body>`, GitLab `X-Gitlab-Token: <the secret>`.
// Every comparison is constant-time. Pure functions, unit-tested beside this file.
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { Forge } from "../../db/schema";

export type Headers = Record<string, string | undefined>;

export interface ForgeDelivery {
  forge: Forge;
  /** push, ping, … (GitLab's "Push Hook" becomes push). */
  event: string;
  deliveryId: string | null;
  /** The signature or token header as sent; null when missing. */
  proof: string | null;
}

/** Which forge sent this, by its headers. Gitea also sends GitHub's headers, so it is asked first. */
export function identifyForge(h: Headers): ForgeDelivery | null {
  if (h["x-gitea-event"] !== undefined) {
    return { forge: "gitea", event: h["x-gitea-event"]!, deliveryId: h["x-gitea-delivery"] ?? null, proof: h["x-gitea-signature"] ?? null };
  }
  if (h["x-gitlab-event"] !== undefined) {
    const event = h["x-gitlab-event"]! === "Push Hook" ? "push" : h["x-gitlab-event"]!;
    return { forge: "gitlab", event, deliveryId: h["x-gitlab-event-uuid"] ?? null, proof: h["x-gitlab-token"] ?? null };
  }
  if (h["x-github-event"] !== undefined) {
    return { forge: "github", event: h["x-github-event"]!, deliveryId: h["x-github-delivery"] ?? null, proof: h["x-hub-signature-256"] ?? null };
  }
  return null;
}

/** Equal strings in constant time (hashed first so neither length nor prefix leaks). */
function same(a: string, b: string): boolean {
  return timingSafeEqual(createHash("sha256").update(a).digest(), createHash("sha256").update(b).digest());
}

export const hmacHex = (secret: string, body: Buffer) => createHmac("sha256", secret).update(body).digest("hex");

/** True when the delivery proves knowledge of the secret for exactly this body. */
export function verifyProof(d: Pick<ForgeDelivery, "forge" | "proof">, secret: string, body: Buffer): boolean {
  if (!d.proof || d.proof.length > 200) return false;
  switch (d.forge) {
    case "github":
      return same(d.proof.toLowerCase(), `sha256=${hmacHex(secret, body)}`);
    case "gitea":
      return same(d.proof.toLowerCase(), hmacHex(secret, body));
    case "gitlab":
      return same(d.proof, secret);
  }
}

export interface PushInfo {
  /** The pushed branch; null for a tag or anything else that is not refs/heads/…. */
  branch: string | null;
  ref: string | null;
  /** The repository's default branch as the payload states it. */
  defaultBranch: string | null;
  /** The commit pushed to. */
  after: string | null;
  /** The branch was deleted by this push. */
  deleted: boolean;
}

const str = (v: unknown, max = 300): string | null => (typeof v === "string" && v.length <= max ? v : null);
const ZERO_SHA = /^0+$/;

export function parsePush(forge: Forge, body: unknown): PushInfo {
  const b = (body && typeof body === "object" ? body : {}) as Record<string, unknown>;
  const repo = (forge === "gitlab" ? b.project : b.repository) as Record<string, unknown> | undefined;
  const ref = str(b.ref);
  const after = str(b.after, 100);
  const branch = ref?.startsWith("refs/heads/") ? ref.slice("refs/heads/".length) : null;
  return {
    ref,
    branch: branch || null,
    defaultBranch: repo && typeof repo === "object" ? str(repo.default_branch) : null,
    after,
    deleted: b.deleted === true || (after !== null && ZERO_SHA.test(after)),
  };
}
