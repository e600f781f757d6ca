// Git objects shared per host (agent/src/ops/git-store.ts) on the real engine and a real smart-HTTP
// server that counts what it serves: a second app from the same repository and a reinstall of an
// unchanged one fetch no packfile; a reinstall after a push fetches only the new objects; deinstalling
// the first app keeps the second working and reinstallable; the last app's deinstall removes the store.
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { waitFor } from "../support/docker";
import { exists } from "../support/fs";
import { freePort } from "../support/net";
import { fetchText, opsFixture, uniqueName, type OpsFixture } from "./ops-fixture";

let fx: OpsFixture;
beforeAll(async () => {
  fx = await opsFixture();
});
afterAll(async () => {
  await fx?.close();
});

/** ~600 KB of incompressible files: a packfile that cannot be mistaken for a ref negotiation. */
function bulk(): Record<string, string> {
  const files: Record<string, string> = { "index.html": "<h1>shared one</h1>\n" };
  for (let i = 0; i < 40; i++) files[`src/mod${i}.py`] = randomBytes(15_000).toString("base64");
  return files;
}

describe("git objects shared per host", () => {
  it("second app and reinstalls fetch only what the host lacks; deinstall keeps the other app whole", async () => {
    const repoName = uniqueName("shared");
    const repo = await fx.git.createRepo(repoName, bulk());
    const [a, b] = [uniqueName("sa"), uniqueName("sb")];
    const [portA, portB] = [await freePort(), await freePort()];

    let mark = fx.git.requests.length;
    await fx.apply(a, "provision", { spec: fx.spec(a, repo.url, portA) });
    const first = fx.git.fetchedBytes(repoName, mark);
    expect(first).toBeGreaterThan(500_000);
    expect(fx.git.fetchedObjects(repoName, mark)).toBe(44); // commit, 2 trees, 41 blobs
    expect(await waitFor(() => fetchText(portA), { timeoutMs: 10_000 })).toContain("shared one");

    // the app's git dir keeps no objects of its own: it borrows the host's store
    const alternates = await readFile(join(fx.stateDir, "git", `${a}.git`, "objects", "info", "alternates"), "utf8");
    expect(alternates.trim()).toMatch(new RegExp(`^${fx.stateDir}/stores/[0-9a-f]{32}\\.git/objects$`));
    expect(await packBytes(join(fx.stateDir, "git", `${a}.git`))).toBe(0);

    // a second app from the same repository: refs asked for, no packfile
    mark = fx.git.requests.length;
    const provisionedB = await fx.apply(b, "provision", { spec: fx.spec(b, repo.url, portB) });
    expect(provisionedB.commitSha).toBe(repo.sha);
    expect(fx.git.requests.slice(mark).some((r) => r.repo === repoName)).toBe(true);
    expect(fx.git.fetchedObjects(repoName, mark)).toBe(0);
    expect(await waitFor(() => fetchText(portB), { timeoutMs: 10_000 })).toContain("shared one");

    // reinstall of an unchanged repository: nothing fetched
    mark = fx.git.requests.length;
    await fx.apply(a, "reinstall", { spec: fx.spec(a, repo.url, portA) });
    expect(fx.git.fetchedObjects(repoName, mark)).toBe(0);

    // a push of one small file: the reinstall fetches that commit's new objects, not the repository
    const pushed = await fx.git.commit(repoName, { "index.html": "<h1>shared two</h1>\n" });
    mark = fx.git.requests.length;
    expect(await fx.apply(a, "reinstall", { spec: fx.spec(a, repo.url, portA) })).toMatchObject({ commitSha: pushed });
    // the new commit, its root tree and the one changed blob
    expect(fx.git.fetchedObjects(repoName, mark)).toBe(3);
    expect(fx.git.fetchedBytes(repoName, mark)).toBeLessThan(first / 20);
    expect(await waitFor(async () => ((await fetchText(portA)).includes("shared two") ? true : undefined), { timeoutMs: 10_000 })).toBe(true);

    // deinstall of the first app: the second one's commit stays whole, it still serves and reinstalls
    await fx.apply(a, "deinstall", {});
    const store = alternates.trim().replace(/\/objects$/, "");
    expect(await exists(store)).toBe(true);
    await fx.apply(b, "restart", {});
    expect(await waitFor(() => fetchText(portB), { timeoutMs: 10_000 })).toContain("shared one");
    await fx.git.commit(repoName, { "extra.txt": "three\n" });
    mark = fx.git.requests.length;
    const reB = await fx.apply(b, "reinstall", { spec: fx.spec(b, repo.url, portB), clean: true });
    expect(reB.commitSha).toBe(await fx.git.headSha(repoName));
    expect(fx.git.fetchedObjects(repoName, mark)).toBe(3); // commit, root tree, extra.txt
    expect(await waitFor(async () => ((await fetchText(portB)).includes("shared two") ? true : undefined), { timeoutMs: 10_000 })).toBe(true);
    expect(await readFile(join(fx.root, b, "extra.txt"), "utf8")).toBe("three\n");
    expect(await readFile(join(fx.root, b, "src", "mod7.py"), "utf8")).toHaveLength(20_000);

    // the last app gone: no store, no git dir left
    await fx.apply(b, "deinstall", {});
    expect(await exists(store)).toBe(false);
    expect(await readdir(join(fx.stateDir, "git"))).toEqual([]);
  });
});

async function packBytes(gitDir: string): Promise<number> {
  const dir = join(gitDir, "objects", "pack");
  let total = 0;
  for (const f of await readdir(dir).catch(() => [] as string[])) total += (await readFile(join(dir, f))).length;
  return total;
}
