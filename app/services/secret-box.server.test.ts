import { createHmac, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { backoffMs, signatureOf, slackBody } from "./notify-delivery.server";
import { SECRET_KEY_FILE, seal, secretKey, unseal } from "./secret-box.server";

describe("secret box", () => {
  it("seals with AES-GCM; another key or a changed byte is refused", () => {
    const key = randomBytes(32);
    const sealed = seal(key, "https://hooks.slack.com/services/T0/B0/XYZ");
    expect(sealed).toMatch(/^v1:/);
    expect(sealed).not.toContain("XYZ");
    expect(unseal(key, sealed)).toBe("https://hooks.slack.com/services/T0/B0/XYZ");
    expect(() => unseal(randomBytes(32), sealed)).toThrow();
    const raw = Buffer.from(sealed.slice(3), "base64");
    raw[raw.length - 1]! ^= 1;
    expect(() => unseal(key, `v1:${raw.toString("base64")}`)).toThrow();
  });

  it("the key: DCC_SECRET_KEY, else generated once under the data dir with mode 0600", async () => {
    const dir = await mkdtemp(join(tmpdir(), "dcc-secret-"));
    try {
      const a = secretKey({ dataDir: dir });
      expect(a).toHaveLength(32);
      expect((await stat(join(dir, SECRET_KEY_FILE))).mode & 0o777).toBe(0o600);
      expect(Buffer.from((await readFile(join(dir, SECRET_KEY_FILE), "utf8")).trim(), "base64").equals(a)).toBe(true);
      const b = secretKey({ dataDir: dir, secretKey: "x".repeat(40) });
      expect(b.equals(a)).toBe(false);
      expect(secretKey({ dataDir: "/nonexistent", secretKey: "x".repeat(40) }).equals(b)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
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
