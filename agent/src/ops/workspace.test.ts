import { lstat, mkdir, mkdtemp, readlink, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OpsError } from "./errors";
import { Layout, chownTree, removeTree } from "./workspace";

let base: string;
let layout: Layout;

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), "dcc-ws-"));
  layout = new Layout(join(base, "root"), join(base, "state"));
  await layout.init();
});
afterEach(async () => {
  await removeTree(base);
});

describe("Layout.paths", () => {
  it("puts the workspace under the root and git, compose and state under the state dir", async () => {
    const p = await layout.paths("my-app");
    expect(p.workspace).toBe(join(base, "root", "my-app"));
    expect(p.gitDir).toBe(join(base, "state", "git", "my-app.git"));
    expect(p.composeFile).toBe(join(base, "state", "compose", "my-app", "docker-compose.yml"));
    expect(p.stateFile).toBe(join(base, "state", "apps", "my-app.json"));
  });

  it.each(["../x", "..", ".", "a/b", "/etc", "UPPER", "-x", "x-", "", "a".repeat(64), "a\u0000b"])("refuses the name %j", async (name) => {
    await expect(layout.paths(name)).rejects.toBeInstanceOf(OpsError);
  });

  it("refuses a workspace that is a symlink escaping the root", async () => {
    const outside = join(base, "outside");
    await mkdir(outside);
    await symlink(outside, join(base, "root", "evil"));
    await expect(layout.paths("evil")).rejects.toThrow(/symbolic link/);
  });

  it("refuses a workspace that is a symlink even to a place inside the root", async () => {
    await mkdir(join(base, "root", "real"));
    await symlink(join(base, "root", "real"), join(base, "root", "alias"));
    await expect(layout.paths("alias")).rejects.toThrow(/symbolic link/);
  });

  it("refuses a workspace that is a file", async () => {
    await writeFile(join(base, "root", "file"), "x");
    await expect(layout.paths("file")).rejects.toThrow(/not a directory/);
  });

  it("refuses a state dir inside the workspace root (a container could mount it)", async () => {
    const bad = new Layout(join(base, "root2"), join(base, "root2", "state"));
    await expect(bad.init()).rejects.toThrow(/must not contain/);
  });
});

describe("chownTree", () => {
  it.skipIf(process.getuid?.() !== 0)("hands files to the user without following symlinks", async () => {
    const ws = join(base, "root", "app");
    await mkdir(join(ws, "sub"), { recursive: true });
    await writeFile(join(ws, "sub", "f.txt"), "x");
    const target = join(base, "precious");
    await writeFile(target, "secret");
    await symlink(target, join(ws, "link"));
    await chownTree(ws, 1000, 1000);
    expect((await stat(join(ws, "sub", "f.txt"))).uid).toBe(1000);
    expect((await lstat(join(ws, "link"))).uid).toBe(1000);
    expect(await readlink(join(ws, "link"))).toBe(target);
    expect((await stat(target)).uid).toBe(0);
  });
});

describe("removeTree", () => {
  it("removes links, not what they point at", async () => {
    const ws = join(base, "root", "app");
    await mkdir(ws);
    const keep = join(base, "keep");
    await mkdir(keep);
    await writeFile(join(keep, "k"), "k");
    await symlink(keep, join(ws, "link"));
    await removeTree(ws);
    await expect(lstat(ws)).rejects.toThrow();
    expect((await stat(join(keep, "k"))).isFile()).toBe(true);
  });
});
