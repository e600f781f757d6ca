import { checkSubmodule, gitRefProblem, GitRefSchema, resolvedAddressProblem } from "./git-ref";
import { parseGitmodules } from "../ops/git-submodules";

describe("gitRef", () => {
  it.each(["main", "release/1.x", "v1.10.0", "v1.0.0+build.5", "feature_x-2", "a".repeat(200), "0123456789abcdef0123456789abcdef01234567", "a".repeat(64)])("accepts %s", (ref) => {
    expect(gitRefProblem(ref)).toBeNull();
    expect(GitRefSchema.safeParse(ref).success).toBe(true);
  });

  it.each([
    ["", "is required"],
    ["-x", "must not start with a hyphen"],
    ["--upload-pack=x", "must not start with a hyphen"],
    ["a..b", "must not contain .."],
    ["a\u0000b", "control characters"],
    ["main\n", "control characters"],
    ["$(touch x)", "branch or tag name"],
    ["a:b", "branch or tag name"],
    ["a b", "branch or tag name"],
    ["a~1", "branch or tag name"],
    ["a^{}", "branch or tag name"],
    ["a@{1}", "branch or tag name"],
    ["ｍａｉｎ", "branch or tag name"],
    ["/a", "must not start or end with /"],
    ["a/", "must not start or end with /"],
    ["a//b", "//"],
    ["a.", "must not end with ."],
    ["a/.hidden", "starting with ."],
    ["x.lock", "ending with .lock"],
    ["HEAD", "without refs/"],
    ["refs/heads/main", "without refs/"],
    ["A".repeat(40), "lower-case commit SHA"],
    ["a".repeat(201), "at most 200"],
  ])("refuses %j (%s)", (ref, why) => {
    expect(gitRefProblem(ref)).toContain(why);
    expect(GitRefSchema.safeParse(ref).success).toBe(false);
  });

  it("refuses a value that is not a string", () => {
    expect(GitRefSchema.safeParse(42).error?.issues[0]?.message).toBe("must be a string");
  });
});

describe("resolved addresses of a repository host", () => {
  const strict = { allowInsecure: false };
  const lab = { allowInsecure: true };
  it.each(["169.254.169.254", "169.254.1.1", "fe80::1", "fd00:ec2::254", "100.100.100.200", "::ffff:169.254.169.254", "0.0.0.0"])("refuses %s in every mode", (a) => {
    expect(resolvedAddressProblem("h.example", [a], lab)).toContain("link-local or metadata");
    expect(resolvedAddressProblem("h.example", ["140.82.112.3", a], strict)).toContain(a);
  });
  it("refuses loopback and private addresses unless insecure git is allowed", () => {
    for (const a of ["127.0.0.1", "10.1.2.3", "192.168.1.1", "172.16.0.1", "::1", "fd12::1"]) {
      expect(resolvedAddressProblem("h.example", [a], strict)).toContain("loopback or private");
      expect(resolvedAddressProblem("h.example", [a], lab)).toBeNull();
    }
  });
  it("accepts public addresses and refuses a name with none", () => {
    expect(resolvedAddressProblem("github.com", ["140.82.112.3", "2606:50c0:8000::153"], strict)).toBeNull();
    expect(resolvedAddressProblem("h.example", [], strict)).toContain("did not resolve");
  });
});

describe("submodules", () => {
  const repo = "https://github.com/owner/app.git";
  const rules = { allowInsecure: false };
  it("resolves relative URLs against the repository and checks the result", () => {
    expect(checkSubmodule({ name: "ui", path: "extensions-builtin/ui", url: "../ui.git" }, repo, rules)).toEqual({ url: "https://github.com/owner/ui.git", path: "extensions-builtin/ui" });
    expect(checkSubmodule({ name: "x", path: "x", url: "./sub.git" }, repo, rules)).toEqual({ url: "https://github.com/owner/app.git/sub.git", path: "x" });
    expect(checkSubmodule({ name: "lib", path: "lib", url: "https://gitlab.com/a/lib.git" }, repo, rules)).toMatchObject({ url: "https://gitlab.com/a/lib.git" });
  });
  it.each([
    ["file:///etc", "must be an https:// URL"],
    ["ext::sh -c touch% /tmp/x", "whitespace"],
    ["--upload-pack=touch /tmp/x", "whitespace"],
    ["--upload-pack=x", "must not start with a hyphen"],
    ["http://169.254.169.254/x.git", "must be an https:// URL"],
    ["https://169.254.169.254/x.git", "link-local or metadata"],
    ["https://user:token@github.com/a/b.git", "credentials"],
    ["ssh://git@github.com/a/b.git", "must be an https:// URL"],
    ["git@github.com:a/b.git", "must be an https:// URL"],
    ["https://10.0.0.1/a.git", "loopback or private"],
    ["../../../x y", "not acceptable"],
  ])("refuses the URL %j naming the submodule", (url, why) => {
    const r = checkSubmodule({ name: "evil", path: "evil", url }, repo, rules);
    expect("problem" in r && r.problem).toContain('submodule "evil"');
    expect("problem" in r && r.problem).toContain(why);
  });
  it.each(["../escape", "/abs", "a/../../b", ".git", "a/.git/hooks", "-x", "a b", "a\nb", ""])("refuses the path %j", (path) => {
    expect(checkSubmodule({ name: "p", path, url: "https://github.com/a/b.git" }, repo, rules)).toHaveProperty("problem");
  });
  it("parses NUL-separated git config output, names with dots included", () => {
    const listing = "submodule.a.b.path\nvendor/ab\0submodule.a.b.url\n../ab.git\0submodule.c.path\nc\0core.bare\nfalse\0submodule.c.url\nhttps://x.example/c.git\0";
    expect(parseGitmodules(listing)).toEqual([
      { name: "a.b", path: "vendor/ab", url: "../ab.git" },
      { name: "c", path: "c", url: "https://x.example/c.git" },
    ]);
  });
});
