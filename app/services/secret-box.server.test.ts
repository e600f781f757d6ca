import { createHmac } from "node:crypto";
import { backoffMs, signatureOf, slackBody } from "./notify-delivery.server";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { open, seal, secretKey } from "./secret-box.server";

describe("secret box", () => {
  it("generates the key once under the data dir with mode 0600, or derives it from DCC_SECRET_KEY", async () => {
    const dir = await mkdtemp(join(tmpdir(), "dcc-secret-"));
    try {
      const a = secretKey({ dataDir: dir });
      expect((await stat(join(dir, "secret.key"))).mode & 0o777).toBe(0o600);
      expect(secretKey({ dataDir: dir }).equals(a)).toBe(true);
      const b = secretKey({ dataDir: dir, secretKey: "x".repeat(40) });
      expect(b.equals(a)).toBe(false);
      expect(b).toHaveLength(32);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("opens only with the same key and purpose, and refuses altered values", () => {
    const key = Buffer.alloc(32, 7);
    const sealed = seal(key, "webhook:app-1", "whsec_secret");
    expect(sealed).not.toContain("whsec_secret");
    expect(open(key, "webhook:app-1", sealed)).toBe("whsec_secret");
    expect(open(key, "webhook:app-2", sealed)).toBeNull();
    expect(open(Buffer.alloc(32, 8), "webhook:app-1", sealed)).toBeNull();
    const parts = sealed.split(".");
    parts[2] = Buffer.from("whsec_secres").toString("base64url");
    expect(open(key, "webhook:app-1", parts.join("."))).toBeNull();
    expect(open(key, "webhook:app-1", "garbage")).toBeNull();
  });
});

describe("webhook signing and messages", () => {
  it("X-DCC-Signature is sha256=HMAC-SHA256(secret, `<timestamp>.<body>`)", () => {
    const body = JSON.stringify({ event: "test" });
    const expected = createHmac("sha256", "s3cret").update(`1700000000.${body}`).digest("hex");
    expect(signatureOf("s3cret", "1700000000", body)).toBe(`sha256=${expected}`);
    expect(signatureOf("s3cret", "1700000001", body)).not.toBe(`sha256=${expected}`);
  });

  it("Slack gets a text message; retries back off exponentially up to an hour", () => {
    expect(JSON.parse(slackBody({ id: "d", event: "deploy.failed", at: "", app: "a", host: null, text: "Deploy of a failed", detail: {} }))).toEqual({ text: ":x: Deploy of a failed" });
    expect([1, 2, 3, 4].map((n) => backoffMs(1000, n))).toEqual([1000, 2000, 4000, 8000]);
    expect(backoffMs(10_000, 30)).toBe(3_600_000);
  });
});
