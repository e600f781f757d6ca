import { execFileSync } from "node:child_process";
import { link, lstat, mkdir, mkdtemp, readFile, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type Dockerode from "dockerode";
import type { CleanupResult, OrphanItem } from "../contract/cleanup";
import { OrphanCleaner, fitResult, measureTree } from "./cleanup";
import { removeTree } from "./workspace";

const HOST = "host-a";
const ours = (app: string, host = HOST) => ({ "dcc.managed": "true", "dcc.host": host, "dcc.app": app, "dcc.app-id": "x" });

interface FakeContainer {
  Id: string;
  Names: string[];
  Labels: Record<string, string>;
  Created: number;
  State: string;
  SizeRw?: number;
  Mounts: { Type: string; Source: string; Destination: string }[];
  NetworkSettings: { Networks: Record<string, { NetworkID: string }> };
}
interface FakeNetwork {
  Id: string;
  Name: string;
  Labels: Record<string, string>;
  Created: string;
}

/** Docker as the cleaner sees it. `honourFilters: false` plays an engine that ignores label filters. */
class FakeDocker {
  containers: FakeContainer[] = [];
  networks: FakeNetwork[] = [];
  removed: string[] = [];
  honourFilters = true;

  private match(labels: Record<string, string>, filters?: { label?: string[] }): boolean {
    if (!this.honourFilters) return true;
    return (filters?.label ?? []).every((f) => {
      const [k, v] = f.split("=");
      return v === undefined ? k in labels : labels[k] === v;
    });
  }
  async listContainers(o: { filters?: { label?: string[] } } = {}) {
    return this.containers.filter((c) => this.match(c.Labels, o.filters)).map((c) => ({ ...c }));
  }
  async listNetworks(o: { filters?: { label?: string[] } } = {}) {
    return this.networks.filter((n) => this.match(n.Labels, o.filters)).map((n) => ({ ...n }));
  }
  getContainer(id: string) {
    return {
      inspect: async () => {
        const c = this.containers.find((x) => x.Id === id);
        if (!c) throw Object.assign(new Error("no such container"), { statusCode: 404 });
        return { Id: c.Id, Config: { Labels: c.Labels } };
      },
      remove: async () => {
        const i = this.containers.findIndex((x) => x.Id === id);
        if (i < 0) throw Object.assign(new Error("no such container"), { statusCode: 404 });
        this.containers.splice(i, 1);
        this.removed.push(id);
      },
    };
  }
  getNetwork(id: string) {
    return {
      inspect: async () => {
        const n = this.networks.find((x) => x.Id === id);
        if (!n) throw Object.assign(new Error("no such network"), { statusCode: 404 });
        return { Labels: n.Labels, Containers: {} };
      },
      remove: async () => {
        const i = this.networks.findIndex((x) => x.Id === id);
        if (i < 0) throw Object.assign(new Error("no such network"), { statusCode: 404 });
        this.networks.splice(i, 1);
        this.removed.push(id);
      },
    };
  }
}

const hex = (c: string) => c.repeat(64);
function container(id: string, labels: Record<string, string>, extra: Partial<FakeContainer> = {}): FakeContainer {
  return { Id: id, Names: [`/${id.slice(0, 6)}`], Labels: labels, Created: Math.floor(Date.now() / 1000) - 3600, State: "running", SizeRw: 123, Mounts: [], NetworkSettings: { Networks: {} }, ...extra };
}

let base: string;
let root: string;
let state: string;
let docker: FakeDocker;
let managed: Set<string>;
let locked: string[];

function cleaner(extra: Partial<ConstructorParameters<typeof OrphanCleaner>[0]> = {}) {
  return new OrphanCleaner({
    workspaceRoot: root,
    stateDir: state,
    hostId: HOST,
    docker: docker as unknown as Dockerode,
    managed: async () => new Set(managed),
    exclusive: async (app, task) => {
      locked.push(app);
      return task();
    },
    log: () => {},
    ...extra,
  });
}
const exists = (p: string) => lstat(p).then(() => true, () => false);
const refs = (list: { kind: string; id: string }[]) => list.map((i) => `${i.kind}:${i.id}`).sort();

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), "dcc-cleanup-"));
  root = join(base, "root");
  state = join(base, "state");
  for (const d of [root, join(state, "git"), join(state, "compose"), join(state, "apps")]) await mkdir(d, { recursive: true });
  docker = new FakeDocker();
  managed = new Set(["kept"]);
  locked = [];
  // A managed app: its workspace, git dir and compose folder are never candidates.
  await mkdir(join(root, "kept"));
  await writeFile(join(root, "kept", "model.bin"), "weights");
  await mkdir(join(state, "git", "kept.git"));
  await mkdir(join(state, "compose", "kept"));
});
afterEach(async () => {
  await removeTree(base);
});

describe("measureTree", () => {
  it("matches du -sb, counts hard links once and never follows links", async () => {
    const dir = join(base, "tree");
    await mkdir(join(dir, "a", "b"), { recursive: true });
    await writeFile(join(dir, "a", "one"), "x".repeat(5000));
    await writeFile(join(dir, "a", "b", "two"), "y".repeat(1234));
    await link(join(dir, "a", "one"), join(dir, "hard"));
    await mkdir(join(base, "big-outside"));
    await writeFile(join(base, "big-outside", "huge"), "z".repeat(100_000));
    await symlink(join(base, "big-outside"), join(dir, "link"));
    const m = await measureTree(dir);
    const du = Number(execFileSync("du", ["-sb", dir], { encoding: "utf8" }).split("\t")[0]);
    expect(m.bytes).toBe(du);
    expect(m.bytes).toBeLessThan(100_000);
    expect(m.complete).toBe(true);
  });

  it("stops at its bound and says the size is a lower bound", async () => {
    const dir = join(base, "many");
    await mkdir(dir);
    for (let i = 0; i < 30; i++) await writeFile(join(dir, `f${i}`), "abc");
    const m = await measureTree(dir, 10);
    expect(m.complete).toBe(false);
    expect(m.entries).toBe(10);
  });

  it("takes the newest modification time in the tree", async () => {
    const dir = join(base, "aged");
    await mkdir(join(dir, "sub"), { recursive: true });
    await writeFile(join(dir, "sub", "f"), "x");
    const old = new Date(Date.now() - 86_400_000);
    const older = new Date(Date.now() - 2 * 86_400_000);
    await utimes(join(dir, "sub", "f"), old, old);
    await utimes(join(dir, "sub"), older, older);
    await utimes(dir, older, older);
    expect(Math.round((await measureTree(dir)).newestMtimeMs / 1000)).toBe(Math.round(old.getTime() / 1000));
  });
});

describe("OrphanCleaner.scan", () => {
  it("lists orphan folders and labelled containers and networks, and nothing of managed apps or others", async () => {
    await mkdir(join(root, "stale"));
    await writeFile(join(root, "stale", "out.png"), "p".repeat(2048));
    await mkdir(join(root, "lost+found"));
    await mkdir(join(root, ".hidden"));
    await mkdir(join(state, "git", "stale.git"));
    await mkdir(join(state, "compose", "gone"));
    await writeFile(join(state, "git", "notes.txt"), "not a git dir name");
    docker.containers.push(
      container(hex("a"), ours("stale")),
      container(hex("b"), ours("kept")),
      container(hex("c"), ours("stale", "host-b")),
      container(hex("d"), { "com.example": "theirs" }),
      container(hex("e"), { ...ours("x"), "dcc.managed": "false" }),
    );
    docker.networks.push(
      { Id: hex("1"), Name: "stale_default", Labels: ours("stale"), Created: new Date(Date.now() - 7200_000).toISOString() },
      { Id: hex("2"), Name: "kept_default", Labels: ours("kept"), Created: new Date().toISOString() },
    );
    const items = await cleaner().scan();
    expect(refs(items)).toEqual(["compose:gone", "container:" + hex("a"), "git:stale", "network:" + hex("1"), "workspace:stale"]);
    const ws = items.find((i) => i.kind === "workspace")!;
    const du = Number(execFileSync("du", ["-sb", join(root, "stale")], { encoding: "utf8" }).split("\t")[0]);
    expect(ws).toMatchObject({ name: join(root, "stale"), app: "stale", sizeBytes: du, sizeComplete: true });
    expect(ws.ageSeconds).toBeGreaterThanOrEqual(0);
    expect(ws.ageSeconds).toBeLessThan(60);
    const c = items.find((i) => i.kind === "container")!;
    expect(c).toMatchObject({ app: "stale", sizeBytes: 123, state: "running" });
    expect(c.ageSeconds).toBeGreaterThanOrEqual(3599);
    expect(items.find((i) => i.kind === "network")!.ageSeconds).toBeGreaterThanOrEqual(7199);
  });

  it("checks the labels itself, even when the engine's filter lets others through", async () => {
    docker.honourFilters = false;
    docker.containers.push(container(hex("d"), {}), container(hex("c"), ours("stale", "host-b")), container(hex("a"), ours("stale")));
    expect(refs(await cleaner().scan())).toEqual(["container:" + hex("a")]);
    const r = await cleaner().run({ dryRun: false });
    expect(docker.removed).toEqual([hex("a")]);
    expect(refs(r.removed)).toEqual(["container:" + hex("a")]);
  });

  it("treats an app with only a state file on disk as managed", async () => {
    managed = new Set();
    expect(refs(await cleaner().scan())).toEqual(["compose:kept", "git:kept", "workspace:kept"]);
  });

  it("never counts an app the console still records on the host (keep) as an orphan", async () => {
    await mkdir(join(root, "restored"));
    await writeFile(join(root, "restored", "model.bin"), "weights");
    const r = await cleaner().run({ dryRun: false, keep: ["restored"] });
    expect(r.removed).toEqual([]);
    expect(r.found).toEqual([]);
    expect(await exists(join(root, "restored", "model.bin"))).toBe(true);
    expect(refs((await cleaner().run({ dryRun: true })).found)).toEqual(["workspace:restored"]);
  });

  it("reports a link under the root as a stray entry, sized as the link itself", async () => {
    await mkdir(join(base, "outside"));
    await writeFile(join(base, "outside", "secret"), "s".repeat(50_000));
    await symlink(join(base, "outside"), join(root, "evil"));
    const [item] = await cleaner().scan();
    expect(item).toMatchObject({ kind: "workspace", id: "evil" });
    expect(item.reason).toMatch(/not a folder/);
    expect(item.sizeBytes).toBeLessThan(1000);
  });
});

describe("OrphanCleaner.run", () => {
  beforeEach(async () => {
    await mkdir(join(root, "stale", "sub"), { recursive: true });
    await writeFile(join(root, "stale", "sub", "f"), "data");
    await mkdir(join(state, "git", "stale.git"));
    docker.containers.push(container(hex("a"), ours("stale")), container(hex("d"), {}));
    docker.networks.push({ Id: hex("1"), Name: "stale_default", Labels: ours("stale"), Created: new Date().toISOString() });
  });

  it("a dry run reports what would go and removes nothing", async () => {
    const r = await cleaner().run({ dryRun: true });
    expect(r.dryRun).toBe(true);
    expect(refs(r.selected)).toEqual(refs(r.found));
    expect(r.foundTotal).toBe(4);
    expect(r.removed).toEqual([]);
    expect(r.freedBytes).toBe(r.found.reduce((s, i) => s + i.sizeBytes, 0));
    expect(docker.removed).toEqual([]);
    expect(await exists(join(root, "stale"))).toBe(true);
    expect(await exists(join(state, "git", "stale.git"))).toBe(true);
  });

  it("removes every orphan, containers first, under each app's lock, and leaves the rest", async () => {
    const r = await cleaner().run({ dryRun: false });
    expect(refs(r.removed)).toEqual(["container:" + hex("a"), "git:stale", "network:" + hex("1"), "workspace:stale"]);
    expect(r.removed[0].kind).toBe("container");
    expect(r.found).toEqual([]);
    expect(r.failed).toEqual([]);
    expect(docker.removed).toEqual([hex("a"), hex("1")]);
    expect(docker.containers.map((c) => c.Id)).toEqual([hex("d")]);
    expect(await exists(join(root, "stale"))).toBe(false);
    expect(await exists(join(root, "kept", "model.bin"))).toBe(true);
    expect(await exists(join(state, "git", "kept.git"))).toBe(true);
    expect(locked.every((a) => a === "stale")).toBe(true);
    expect(locked.length).toBe(4);
  });

  it("removes only the named items that are still orphans", async () => {
    const r = await cleaner().run({
      dryRun: false,
      items: [
        { kind: "workspace", id: "stale" },
        { kind: "workspace", id: "kept" },
        { kind: "container", id: hex("d") },
        { kind: "workspace", id: "never-was" },
      ],
    });
    expect(refs(r.removed)).toEqual(["workspace:stale"]);
    expect(refs(r.skipped)).toEqual(["container:" + hex("d"), "workspace:kept", "workspace:never-was"]);
    expect(await exists(join(root, "kept"))).toBe(true);
    expect(docker.removed).toEqual([]);
    expect(refs(r.found)).toEqual(["container:" + hex("a"), "git:stale", "network:" + hex("1")]);
  });

  it("leaves an item whose app became managed between scan and removal", async () => {
    const c = cleaner({
      exclusive: async (app, task) => {
        managed.add(app);
        return task();
      },
    });
    const r = await c.run({ dryRun: false });
    expect(r.removed).toEqual([]);
    expect(r.skipped.every((s) => /managed on this host again/.test(s.reason!))).toBe(true);
    expect(await exists(join(root, "stale"))).toBe(true);
  });

  it("leaves a container whose labels changed since the scan", async () => {
    const c = cleaner({
      exclusive: async (_app, task) => {
        docker.containers[0].Labels = { relabelled: "yes" };
        return task();
      },
    });
    const r = await c.run({ dryRun: false, items: [{ kind: "container", id: hex("a") }] });
    expect(r.removed).toEqual([]);
    expect(r.skipped[0].reason).toMatch(/no longer carries our labels/);
    expect(docker.removed).toEqual([]);
  });

  it("never removes a folder another container still mounts, and says so in the dry run", async () => {
    docker.containers.push(container(hex("f"), { theirs: "1" }, { Mounts: [{ Type: "bind", Source: join(root, "stale", "sub"), Destination: "/data" }] }));
    const dry = await cleaner().run({ dryRun: true });
    expect(dry.skipped.find((s) => s.id === "stale" && s.kind === "workspace")?.reason).toMatch(/mounted by container f{12}, which stays/);
    const r = await cleaner().run({ dryRun: false });
    expect(r.skipped.find((s) => s.kind === "workspace")?.reason).toMatch(/mounted by container/);
    expect(await exists(join(root, "stale", "sub", "f"))).toBe(true);
    expect(docker.containers.map((c) => c.Id)).toContain(hex("f"));
  });

  it("a network another container is attached to stays", async () => {
    docker.containers.push(container(hex("f"), {}, { NetworkSettings: { Networks: { stale_default: { NetworkID: hex("1") } } } }));
    const r = await cleaner().run({ dryRun: false });
    expect(r.skipped.find((s) => s.kind === "network")?.reason).toMatch(/in use by container f{12}/);
    expect(docker.networks).toHaveLength(1);
  });

  it("unlinks a link instead of following it, at the top and inside", async () => {
    await mkdir(join(base, "outside"));
    await writeFile(join(base, "outside", "precious"), "keep me");
    await symlink(join(base, "outside"), join(root, "evil"));
    await symlink(join(base, "outside"), join(root, "stale", "sub", "escape"));
    await symlink(join(base, "outside", "precious"), join(root, "stale", "file-link"));
    const r = await cleaner().run({ dryRun: false });
    expect(refs(r.removed)).toContain("workspace:evil");
    expect(await exists(join(root, "evil"))).toBe(false);
    expect(await exists(join(root, "stale"))).toBe(false);
    expect(await readFile(join(base, "outside", "precious"), "utf8")).toBe("keep me");
  });

  it("keeps items younger than minAgeSeconds", async () => {
    const old = new Date(Date.now() - 3 * 3600_000);
    await utimes(join(root, "stale", "sub", "f"), old, old);
    await utimes(join(root, "stale", "sub"), old, old);
    await utimes(join(root, "stale"), old, old);
    const r = await cleaner().run({ dryRun: false, minAgeSeconds: 7200 });
    // the container was created an hour ago, the network and git dir just now: they stay
    expect(refs(r.removed)).toEqual(["workspace:stale"]);
    expect(refs(r.skipped)).toEqual(["container:" + hex("a"), "git:stale", "network:" + hex("1")]);
    expect(r.skipped[0].reason).toMatch(/younger than 7200 s/);
  });

  it("runs one cleanup at a time", async () => {
    const c = cleaner();
    const [a, b] = await Promise.all([c.run({ dryRun: false }), c.run({ dryRun: false })]);
    expect(a.removed.length).toBe(4);
    expect(b.removed).toEqual([]);
    expect(b.found).toEqual([]);
  });
});

describe("fitResult", () => {
  it("cuts lists to fit and says so", () => {
    const item: OrphanItem = { kind: "workspace", id: "x", name: "/opt/dockerstore/" + "x".repeat(200), app: "x", sizeBytes: 1, sizeComplete: true, at: null, ageSeconds: null, reason: "r" };
    const big: CleanupResult = {
      dryRun: true,
      scannedAt: new Date().toISOString(),
      found: Array.from({ length: 500 }, () => item),
      foundTotal: 500,
      selected: Array.from({ length: 500 }, () => ({ kind: "workspace" as const, id: "x", name: item.name })),
      removed: [],
      skipped: [],
      failed: [],
      freedBytes: 500,
    };
    const fitted = fitResult(big, 60_000);
    expect(Buffer.byteLength(JSON.stringify(fitted))).toBeLessThanOrEqual(60_000);
    expect(fitted.truncated).toBe(true);
    expect(fitted.foundTotal).toBe(500);
    expect(fitResult({ ...big, found: [], selected: [] }, 60_000).truncated).toBeUndefined();
  });
});


describe("the shared model store", () => {
  it("is never an orphan: .models under the root is no app name, so cleanup leaves it and its files", async () => {
    await mkdir(join(root, ".models", "Lora"), { recursive: true });
    await writeFile(join(root, ".models", "Lora", "tiny.safetensors"), "weights");
    const scan = await cleaner().scan();
    expect(scan.some((i) => i.id === ".models")).toBe(false);
    const r = await cleaner().run({ dryRun: false });
    expect(r.removed.some((i) => i.id === ".models")).toBe(false);
    // A request naming it is refused (not a folder name the agent uses).
    const named = await cleaner().run({ dryRun: false, items: [{ kind: "workspace", id: ".models" }] });
    expect(named.removed).toEqual([]);
    expect(await readFile(join(root, ".models", "Lora", "tiny.safetensors"), "utf8")).toBe("weights");
  });
});
