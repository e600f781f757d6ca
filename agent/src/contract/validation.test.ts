import { describe, expect, it } from "vitest";
import { AppNameSchema, CommandSchema, ImageSchema, PortSchema, appSpecSchema, fieldErrors, repositoryProblem } from "./validation";

const strict = { allowInsecure: false };
const lab = { allowInsecure: true };

describe("AppNameSchema", () => {
  it.each(["sd", "comfy-ui", "a", "x1", "a".repeat(63), "0day"])("accepts %j", (n) => {
    expect(AppNameSchema.safeParse(n).success).toBe(true);
  });
  it.each(["../x", "a;b", "-rf", "Upper", "a".repeat(64), "", "a_b", "a.b", "trailing-", " sd", "sd ", "a/b", "sd\n", "ünï"])(
    "refuses %j",
    (n) => {
      expect(AppNameSchema.safeParse(n).success).toBe(false);
    },
  );
  it("refuses non-strings without coercion", () => {
    expect(AppNameSchema.safeParse(12).success).toBe(false);
  });
});

describe("PortSchema", () => {
  it.each([1024, 7860, 65535])("accepts %j", (p) => expect(PortSchema.safeParse(p).success).toBe(true));
  it.each([0, 80, 1023, 65536, -1, 7860.5, "7860", "7860; id", null, NaN, Infinity])("refuses %j", (p) => {
    expect(PortSchema.safeParse(p).success).toBe(false);
  });
});

describe("repository URLs", () => {
  it.each([
    "https://github.com/AUTOMATIC1111/stable-diffusion-webui.git",
    "https://gitlab.com/group/sub/project",
    "https://git.example.org:8443/team/app.git",
    "https://git.example.org/caf%C3%A9/r%E2%82%AC.git",
  ])("accepts %s", (u) => expect(repositoryProblem(u, strict)).toBeNull());

  it.each([
    ["ext::sh", "https://"],
    ["ext::sh -c touch% /tmp/pwned", "whitespace"],
    ["file:///etc/passwd", "https://"],
    ["--upload-pack=touch", "hyphen"],
    ["https://github.com/a/%2e%2e/b", ".."],
    ["https://github.com/a/..%2f..%2fetc", "encoded slashes"],
    ["https://github.com/a/..%5C..%5Cetc", "encoded slashes"],
    ["https://github.com/-oops/b", "option-like"],
    ["-u/tmp/x", "hyphen"],
    ["https://user:secret@github.com/a/b.git", "credentials"],
    ["https://token@github.com/a/b.git", "credentials"],
    ["https://github.com/a/b.git ", "whitespace"],
    [" https://github.com/a/b.git", "whitespace"],
    ["https://github.com/a b.git", "whitespace"],
    ["https://github.com/a/b.git\n", "whitespace"],
    ["https://github.com/a/%0ab.git", "encoded"],
    ["https://github.com/a/%20b.git", "encoded"],
    ["https://github.com/a/%C2%85b.git", "encoded"],
    ["http://github.com/a/b.git", "https://"],
    ["ssh://git@github.com/a/b.git", "https://"],
    ["git@github.com:a/b.git", "https://"],
    ["https://127.0.0.1/a.git", "loopback"],
    ["https://localhost/a.git", "loopback"],
    ["https://10.0.0.5/a.git", "loopback or private"],
    ["https://169.254.169.254/latest/meta-data", "link-local"],
    ["https://metadata.google.internal/x", "metadata"],
    ["https://github.com/", "path"],
    ["https://github.com/a/b.git?x=1", "query"],
    ["https://github.com/a/../../b", ".."],
    ["HTTPS://github.com/a/b", "https://"],
    ["https://exa_mple.com/a", "DNS"],
    ["https://intranet/a.git", "DNS"],
    ["", "required"],
    ["https://github.com/a/$(touch${IFS}/tmp/pwned).git", "ASCII letters"],
    ["https://github.com/a/`id`.git", "ASCII letters"],
    ["https://github.com/a/b.git;id", "ASCII letters"],
    ["https://github.com/a/b|id", "ASCII letters"],
    ["https://github.com/a/b&id", "ASCII letters"],
    ["https://github.com/a/'b'.git", "ASCII letters"],
    ["https://github.com/a\\b.git", "ASCII letters"],
    ["https://gіthub.com/a/b.git", "ASCII letters"], // Cyrillic і: a look-alike host
    ["https://github.com/ａ/b.git", "ASCII letters"], // full-width a
  ])("refuses %j (%s)", (u, why) => {
    const problem = repositoryProblem(u, strict);
    expect(problem).not.toBeNull();
    expect(problem).toContain(why);
  });

  it("admits http and loopback only in the insecure lab mode", () => {
    expect(repositoryProblem("http://127.0.0.1:9418/app.git", lab)).toBeNull();
    expect(repositoryProblem("http://192.168.1.20/app.git", lab)).toBeNull();
    expect(repositoryProblem("http://127.0.0.1:9418/app.git", strict)).not.toBeNull();
  });

  it("refuses link-local and metadata addresses even in lab mode", () => {
    expect(repositoryProblem("http://169.254.169.254/latest", lab)).toContain("link-local");
    expect(repositoryProblem("http://[fe80::1]/x", lab)).toContain("link-local");
    // the metadata address wrapped in IPv6 (mapped, compatible, NAT64; URL parsing writes it in hex)
    for (const u of ["http://[::ffff:169.254.169.254]/latest", "http://[::ffff:a9fe:a9fe]/x", "http://[0:0:0:0:0:ffff:169.254.169.254]/x", "http://[::169.254.169.254]/x", "http://[64:ff9b::169.254.169.254]/x"]) {
      expect(repositoryProblem(u, lab), u).toContain("link-local");
    }
    expect(repositoryProblem("http://[::ffff:127.0.0.1]/app.git", lab)).toBeNull();
    expect(repositoryProblem("ext::sh", lab)).not.toBeNull();
  });

  it("honours a host allow-list", () => {
    const rules = { allowInsecure: false, allowedHosts: ["github.com"] };
    expect(repositoryProblem("https://github.com/a/b.git", rules)).toBeNull();
    expect(repositoryProblem("https://gitlab.com/a/b.git", rules)).toContain("allowed");
  });
});

describe("CommandSchema", () => {
  it.each(["python main.py --listen", "sh -c 'echo $HOME'", "a\tb", "echo ${PORT}; ls | wc -l"])("accepts %j", (c) => {
    expect(CommandSchema.safeParse(c).success).toBe(true);
  });
  it.each(["", "   ", "run\nrm -rf /", "run\r", "a\u0000b", "a\u001b[2Jb", "a\u007f", "a\u0085", "x".repeat(4097)])("refuses %j", (c) => {
    expect(CommandSchema.safeParse(c).success).toBe(false);
  });
});

describe("ImageSchema", () => {
  it.each(["busybox", "nvcr.io/nvidia/pytorch:24.10-py3", "localhost:5000/a/b:tag", "dcc-test/busybox:1", `ubuntu@sha256:${"a".repeat(64)}`])(
    "accepts %j",
    (i) => expect(ImageSchema.safeParse(i).success).toBe(true),
  );
  it.each(["--privileged", "Busybox", "a b", "img;rm", "", "x:-tag"])("refuses %j", (i) => expect(ImageSchema.safeParse(i).success).toBe(false));
});

describe("appSpecSchema + fieldErrors", () => {
  it("names every bad field, and unknown fields", () => {
    const r = appSpecSchema(strict).safeParse({ name: "A", repository: "file:///x", startCommand: "a\nb", port: "7860", extra: 1 });
    expect(r.success).toBe(false);
    const fields = fieldErrors(r.error!);
    expect(Object.keys(fields).sort()).toEqual(["extra", "name", "port", "repository", "startCommand"]);
    expect(fields.port).toBe("must be a whole number");
    expect(fields.extra).toBe("is not a known field");
  });
  it("names a __proto__ or constructor key like any other unknown field", () => {
    const r = appSpecSchema(strict).safeParse(JSON.parse('{"name":"ok","__proto__":{"polluted":1},"constructor":{"prototype":{}}}'));
    const fields = fieldErrors(r.error!);
    expect(Object.keys(fields)).toEqual(expect.arrayContaining(["__proto__", "constructor"]));
    expect(Object.getOwnPropertyDescriptor(fields, "__proto__")?.value).toBe("is not a known field");
    expect(Object.getPrototypeOf(fields)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
  it("says a missing field is required", () => {
    const r = appSpecSchema(strict).safeParse({ name: "ok" });
    const fields = fieldErrors(r.error!);
    expect(fields.repository).toBe("is required");
    expect(fields.port).toBe("is required");
  });
});
