// Pinned refs, rollback, submodules and the git host checks on the real engine and a real
// smart-HTTP server: a tag or a commit stays, a branch is followed, a rollback keeps untracked
// files and leaves the app's ref as it was; redirects and names resolving to metadata addresses
// are refused; submodules are fetched only when asked, and a hostile one is refused by name.
import { lookup } from "node:dns/promises";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { waitFor } from "../support/docker";
import { exists } from "../support/fs";
import { freePort } from "../support/net";
import { CommandFailed, fetchText, opsFixture, uniqueName, type OpsFixture } from "./ops-fixture";

const resolved: string[] = [];
let fx: OpsFixture;
beforeAll(async () => {
  fx = await opsFixture({
    // Test names: one resolves to the cloud metadata address, one to this machine (the git server).
    resolveHost: async (host) => {
      resolved.push(host);
      if (host === "metadata.example.test") return ["169.254.169.254"];
      if (host === "git.example.test") return ["127.0.0.1"];
      return (await lookup(host, { all: true })).map((a) => a.address);
    },
  });
});
afterAll(async () => {
  await fx?.close();
});

const page = (text: string) => ({ "index.html": `<h1>${text}</h1>\n` });

async function failure(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CommandFailed);
  return (err as Error).message;
}

describe("gitRef: tags and commits stay, branches are followed", () => {
  it("a tag and a commit SHA pin the app; reinstall stays there while main moves on", async () => {
    const repo = uniqueName("pin");
    const { url, sha: one } = await fx.git.createRepo(repo, page("version one"));
    await fx.git.tag(repo, "v1");
    const two = await fx.git.commit(repo, page("version two"));

    const tagged = uniqueName("tagged");
    const port = await freePort();
    const spec = fx.spec(tagged, url, port, { gitRef: "v1" });
    expect(await fx.apply(tagged, "provision", { spec })).toMatchObject({ commitSha: one, ref: "v1", refKind: "tag" });
    expect(await waitFor(() => fetchText(port), { timeoutMs: 10_000 })).toContain("version one");
    await fx.git.commit(repo, page("version three"));
    expect(await fx.apply(tagged, "reinstall", { spec })).toMatchObject({ commitSha: one, refKind: "tag" });

    const pinned = uniqueName("sha");
    const port2 = await freePort();
    const spec2 = fx.spec(pinned, url, port2, { gitRef: two });
    expect(await fx.apply(pinned, "provision", { spec: spec2 })).toMatchObject({ commitSha: two, refKind: "commit" });
    expect(await waitFor(() => fetchText(port2), { timeoutMs: 10_000 })).toContain("version two");
    expect(await fx.apply(pinned, "reinstall", { spec: spec2 })).toMatchObject({ commitSha: two });
  });

  it("a branch is followed; a rollback redeploys an earlier commit, keeps untracked files, and the next reinstall follows the branch again", async () => {
    const repo = uniqueName("follow");
    const { url, sha: one } = await fx.git.createRepo(repo, page("version one"));
    const name = uniqueName("branch");
    const port = await freePort();
    const spec = fx.spec(name, url, port, { gitRef: "main" });
    expect(await fx.apply(name, "provision", { spec })).toMatchObject({ commitSha: one, ref: "main", refKind: "branch" });
    const two = await fx.git.commit(repo, page("version two"));
    expect(await fx.apply(name, "reinstall", { spec })).toMatchObject({ commitSha: two });
    expect(await waitFor(() => fetchText(port).then((t) => (t.includes("two") ? t : undefined)), { timeoutMs: 10_000 })).toContain("version two");

    // a model the app downloaded: untracked, it survives the rollback
    await mkdir(join(fx.root, name, "models"), { recursive: true });
    await writeFile(join(fx.root, name, "models", "x.bin"), "weights");
    const back = await fx.apply(name, "reinstall", { spec, commitSha: one });
    expect(back).toMatchObject({ commitSha: one, ref: "main", refKind: "branch" });
    expect(String(back.message)).toContain("rolled back");
    expect(await waitFor(() => fetchText(port).then((t) => (t.includes("one") ? t : undefined)), { timeoutMs: 10_000 })).toContain("version one");
    expect(await readFile(join(fx.root, name, "models", "x.bin"), "utf8")).toBe("weights");

    // the app's ref is still the branch: a plain reinstall brings the newest commit back
    const three = await fx.git.commit(repo, page("version three"));
    expect(await fx.apply(name, "reinstall", { spec })).toMatchObject({ commitSha: three, ref: "main" });
    expect(await readFile(join(fx.root, name, "models", "x.bin"), "utf8")).toBe("weights");
  });

  it("a rollback to a commit the host's store no longer has fetches that commit by its id", async () => {
    const repo = uniqueName("pruned");
    const { url, sha: one } = await fx.git.createRepo(repo, page("version one"));
    const [name, other] = [uniqueName("keep"), uniqueName("other")];
    const port = await freePort();
    const spec = fx.spec(name, url, port);
    await fx.apply(name, "provision", { spec });
    await fx.git.commit(repo, page("version two"));
    await fx.apply(name, "reinstall", { spec });
    const three = await fx.git.commit(repo, page("version three"));
    expect(await fx.apply(name, "reinstall", { spec })).toMatchObject({ commitSha: three });
    // another app of the repository comes and goes: its deinstall prunes the store to what apps still name
    await fx.apply(other, "provision", { spec: fx.spec(other, url, await freePort()) });
    await fx.apply(other, "deinstall", {});

    const from = fx.git.requests.length;
    expect(await fx.apply(name, "reinstall", { spec, commitSha: one })).toMatchObject({ commitSha: one });
    expect(fx.git.fetchedObjects(repo, from)).toBeGreaterThan(0);
    expect(await waitFor(() => fetchText(port).then((t) => (t.includes("one") ? t : undefined)), { timeoutMs: 10_000 })).toContain("version one");
  });

  it("a ref the repository does not have is a clear error, and nothing is left behind", async () => {
    const repo = uniqueName("noref");
    const { url } = await fx.git.createRepo(repo, page("x"));
    const name = uniqueName("noref");
    const message = await failure(fx.apply(name, "provision", { spec: fx.spec(name, url, await freePort(), { gitRef: "no-such-branch" }) }));
    expect(message).toContain('gitRef "no-such-branch" is neither a branch nor a tag');
    expect(await exists(join(fx.root, name))).toBe(false);
  });
});

describe("git host checks", () => {
  it("a redirect to another host is not followed", async () => {
    const repo = uniqueName("moved");
    await fx.git.createRepo(repo, page("moved"));
    // the same server under another host name: git must not go there on its own
    fx.git.redirectTo(`${fx.git.url.replace("127.0.0.1", "localhost")}/`);
    const name = uniqueName("redir");
    const from = fx.git.requests.length;
    const message = await failure(fx.apply(name, "provision", { spec: fx.spec(name, `${fx.git.url}/redirect/${repo}.git`, await freePort()) }));
    expect(message).toContain("redirect");
    expect(fx.git.requests.slice(from).some((r) => r.command === "redirect")).toBe(true);
    expect(fx.git.requests.slice(from).some((r) => r.repo === repo)).toBe(false);
    expect(await exists(join(fx.root, name))).toBe(false);
  });

  it("a host name that resolves to the metadata address is refused before git runs; a safe name is pinned to what was checked", async () => {
    const repo = uniqueName("dns");
    await fx.git.createRepo(repo, page("by name"));
    const port = new URL(fx.git.url).port;
    const name = uniqueName("meta");
    const from = fx.git.requests.length;
    const message = await failure(fx.apply(name, "provision", { spec: fx.spec(name, `http://metadata.example.test:${port}/${repo}.git`, await freePort()) }));
    expect(message).toContain(`http://metadata.example.test:${port}/${repo}.git`);
    expect(message).toContain("link-local or metadata address (169.254.169.254)");
    expect(fx.git.requests.length).toBe(from);
    expect(await exists(join(fx.root, name))).toBe(false);

    // a name no real DNS knows reaches the server only through the pinned address
    const ok = uniqueName("named");
    const appPort = await freePort();
    await fx.apply(ok, "provision", { spec: fx.spec(ok, `http://git.example.test:${port}/${repo}.git`, appPort) });
    expect(await waitFor(() => fetchText(appPort), { timeoutMs: 10_000 })).toContain("by name");
    expect(resolved).toContain("git.example.test");
  });
});

describe("submodules", () => {
  it("are fetched when the app asks, at the recorded commit, and left alone when it does not", async () => {
    const lib = uniqueName("lib");
    const { sha: libSha } = await fx.git.createRepo(lib, { "README.md": "library\n" });
    await fx.git.commit(lib, { "README.md": "library, later\n" });
    const repo = uniqueName("super");
    const { url } = await fx.git.createRepo(repo, page("super"));
    await fx.git.addSubmodule(repo, { name: "lib", path: "vendor/lib", url: `../${lib}.git`, sha: libSha });

    const withSubs = uniqueName("subs");
    await fx.apply(withSubs, "provision", { spec: fx.spec(withSubs, url, await freePort(), { gitSubmodules: true }) });
    expect(await readFile(join(fx.root, withSubs, "vendor", "lib", "README.md"), "utf8")).toBe("library\n");
    expect(await exists(join(fx.root, withSubs, "vendor", "lib", ".git"))).toBe(false);

    const without = uniqueName("nosubs");
    const from = fx.git.requests.length;
    await fx.apply(without, "provision", { spec: fx.spec(without, url, await freePort()) });
    expect(await exists(join(fx.root, without, "vendor", "lib", "README.md"))).toBe(false);
    expect(fx.git.requests.slice(from).some((r) => r.repo === lib)).toBe(false);
  });

  it("a submodule that cannot be fetched fails the deploy naming it", async () => {
    const repo = uniqueName("gone");
    const { url, sha } = await fx.git.createRepo(repo, page("gone"));
    await fx.git.addSubmodule(repo, { name: "gone", path: "gone", url: "../no-such-repository.git", sha });
    const name = uniqueName("gone");
    const message = await failure(fx.apply(name, "provision", { spec: fx.spec(name, url, await freePort(), { gitSubmodules: true }) }));
    expect(message).toContain('git could not fetch submodule "gone" from http://127.0.0.1:');
    expect(message).not.toContain(fx.stateDir);
  });

  const hostile: [string, string][] = [
    ["local", "file:///etc"],
    ["shell", "ext::sh -c touch% /tmp/dcc-pwned"],
    ["metadata", "http://169.254.169.254/latest.git"],
    ["option", "--upload-pack=touch /tmp/dcc-pwned"],
  ];
  it.each(hostile)("a hostile submodule URL (%s) is refused naming it, and nothing is left behind", async (label, subUrl) => {
    const repo = uniqueName(`bad-${label}`);
    const { url, sha } = await fx.git.createRepo(repo, page("bad"));
    await fx.git.addSubmodule(repo, { name: `evil-${label}`, path: "evil", url: subUrl, sha });
    const name = uniqueName("hostile");
    const message = await failure(fx.apply(name, "provision", { spec: fx.spec(name, url, await freePort(), { gitSubmodules: true }) }));
    expect(message).toContain(`submodule "evil-${label}"`);
    expect(await exists(join(fx.root, name))).toBe(false);
    expect(await exists("/tmp/dcc-pwned")).toBe(false);
    expect((await readdir(join(fx.stateDir, "git")).catch(() => [] as string[])).includes(`${name}.git`)).toBe(false);
  });
});
