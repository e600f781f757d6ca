import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  EnvSchema,
  GitCredentialSchema,
  HealthPathSchema,
  REDACTED,
  RegistryCredentialSchema,
  ResourcesSchema,
  SecretsInputSchema,
  redact,
  registryOf,
} from "./app-config";
import { signCommandSecrets, verifyCommandSecrets } from "./command-secrets";
import { fieldErrors } from "./validation";

const errors = (r: { success: boolean; error?: unknown }) => (r.success ? {} : fieldErrors(r.error as never));

describe("env", () => {
  it("takes names and values exactly as given, $ and newlines included", () => {
    const env = { A: "$HOME x", B_2: "line1\nline2", _X: "", COMMANDLINE_ARGS: "--api $(id)" };
    expect(EnvSchema.parse(env)).toEqual(env);
  });

  it.each([
    ["lower", "must be upper-case"],
    ["1ABC", "must be upper-case"],
    ["A-B", "must be upper-case"],
    ["A B", "must be upper-case"],
    ["$(id)", "must be upper-case"],
    ["A\nB", "must be upper-case"],
    ["PORT", "is reserved"],
    ["HOME", "is reserved"],
    ["PATH", "is reserved"],
    ["USER", "is reserved"],
    ["LOGNAME", "is reserved"],
    ["DCC_SECRET_KEY", "is reserved"],
    ["__proto__", "must be upper-case"],
  ])("refuses the name %j, naming it", (name, problem) => {
    const r = EnvSchema.safeParse(JSON.parse(`{${JSON.stringify(name)}: "v"}`));
    expect(r.success).toBe(false);
    expect(errors(r)[name]).toContain(problem);
  });

  it("refuses NUL, oversized values and too many names", () => {
    expect(errors(EnvSchema.safeParse({ A: "x\u0000y" })).A).toContain("NUL");
    expect(errors(EnvSchema.safeParse({ A: "x".repeat(2049) })).A).toContain("at most");
    const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`V${i}`, "x"]));
    expect(Object.values(errors(EnvSchema.safeParse(many))).join()).toContain("at most 64");
    expect(EnvSchema.safeParse({ A: 1 }).success).toBe(false);
  });
});

describe("secrets", () => {
  it("a value sets, null removes", () => {
    expect(SecretsInputSchema.parse({ HF_TOKEN: "hf_abcdef", OLD: null })).toEqual({ HF_TOKEN: "hf_abcdef", OLD: null });
  });

  it("refuses empty, short, NUL and oversized values and bad names", () => {
    expect(errors(SecretsInputSchema.safeParse({ A: "" })).A).toBeDefined();
    expect(errors(SecretsInputSchema.safeParse({ A: "abc" })).A).toContain("at least 4");
    expect(errors(SecretsInputSchema.safeParse({ A: "abcd\u0000" })).A).toContain("NUL");
    expect(errors(SecretsInputSchema.safeParse({ A: "x".repeat(4097) })).A).toContain("at most");
    expect(errors(SecretsInputSchema.safeParse({ PATH: "abcdef" })).PATH).toContain("reserved");
  });
});

describe("git credential, resources, health path, registry", () => {
  it("checks each field", () => {
    expect(GitCredentialSchema.safeParse({ token: "ghp_x" }).success).toBe(true);
    expect(errors(GitCredentialSchema.safeParse({ token: "a\nb" })).token).toContain("control");
    expect(errors(GitCredentialSchema.safeParse({ username: "a:b", token: "t" })).username).toBeDefined();
    expect(errors(GitCredentialSchema.safeParse({ username: "u" })).token).toBeDefined();
    expect(ResourcesSchema.parse({ memoryMiB: 2048, cpus: 1.5 })).toEqual({ memoryMiB: 2048, cpus: 1.5 });
    expect(errors(ResourcesSchema.safeParse({ memoryMiB: "2g" })).memoryMiB).toBeDefined();
    expect(errors(ResourcesSchema.safeParse({ cpus: 0 })).cpus).toBeDefined();
    expect(HealthPathSchema.safeParse("/health?x=1").success).toBe(true);
    for (const bad of ["health", "/a b", "/a\nb", "//x\u0000", "/$(id)"]) expect(HealthPathSchema.safeParse(bad).success, bad).toBe(false);
    expect(RegistryCredentialSchema.safeParse({ host: "registry.example.com:5000", username: "u", password: "p" }).success).toBe(true);
    expect(RegistryCredentialSchema.safeParse({ host: "https://x", username: "u", password: "p" }).success).toBe(false);
  });

  it("finds an image's registry as Docker does", () => {
    expect(registryOf("nvcr.io/nvidia/pytorch:24.10-py3")).toBe("nvcr.io");
    expect(registryOf("127.0.0.1:5000/app:1")).toBe("127.0.0.1:5000");
    expect(registryOf("localhost/app")).toBe("localhost");
    expect(registryOf("library/ubuntu")).toBeNull();
    expect(registryOf("ubuntu")).toBeNull();
  });
});

describe("redact", () => {
  it("replaces every occurrence, longest value first", () => {
    expect(redact("token=s3cr3t-value and again s3cr3t-value", ["s3cr3t-value"])).toBe(`token=${REDACTED} and again ${REDACTED}`);
    expect(redact("abcd-efgh", ["abcd", "abcd-efgh"])).toBe(REDACTED);
    expect(redact("nothing here", ["s3cr3t"])).toBe("nothing here");
    expect(redact("a $x (y) [z]", ["$x (y) [z]"])).toBe(`a ${REDACTED}`);
  });
});

describe("secrets beside a command", () => {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const other = generateKeyPairSync("ed25519");
  const bundle = { commandId: "cmd-1", hostId: "host-1", values: { HF_TOKEN: "hf_canary" }, git: { token: "ghp_canary" } };

  it("verifies when signed by the console for this command and host", () => {
    const env = signCommandSecrets(bundle, privateKey);
    const r = verifyCommandSecrets(env, publicKey, { commandId: "cmd-1", hostId: "host-1" });
    expect(r).toEqual({ ok: true, secrets: bundle });
  });

  it("refuses another key, another command or host, and altered bytes, never echoing a value", () => {
    const env = signCommandSecrets(bundle, privateKey);
    const forged = signCommandSecrets(bundle, other.privateKey);
    const results = [
      verifyCommandSecrets(forged, publicKey, { commandId: "cmd-1", hostId: "host-1" }),
      verifyCommandSecrets(env, publicKey, { commandId: "cmd-2", hostId: "host-1" }),
      verifyCommandSecrets(env, publicKey, { commandId: "cmd-1", hostId: "host-2" }),
      verifyCommandSecrets({ ...env, payload: env.payload.replace("hf_canary", "hf_canarz") }, publicKey, { commandId: "cmd-1", hostId: "host-1" }),
    ];
    for (const r of results) {
      expect(r.ok).toBe(false);
      expect(JSON.stringify(r)).not.toContain("canary");
    }
  });
});
