// Deploy history and rollback through the console's API, with the built console, a real agent on
// the real Docker engine and a smart-HTTP git server: each deploy is recorded (commit, ref, who,
// outcome), newest first; apps.rollback redeploys the previous commit keeping untracked files and
// leaving gitRef as it was; a failed deploy is recorded as failed with its reason; a commit the app
// never deployed is refused naming commitSha.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { freePort } from "../support/net";
import type { DeployDto } from "../../app/services/deploys.server";
import { stackWatching, type AppItem, type ActionReply } from "./stack-support";

const NAME = "hist-site";
// One stack for the whole file: git server, console and agent on the real Docker engine.
const { s, watch } = await stackWatching(NAME);
let port: number;

type Deploy = Omit<DeployDto, "id">;

const app = async () => (await s.c.query<AppItem>("apps.get", { name: NAME })).body.result!.data;
const history = async () => (await s.c.query<{ items: Deploy[] }>("apps.deploys", { name: NAME })).body.result!.data.items;

async function page(): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${port}/index.html`, { signal: AbortSignal.timeout(2000) });
  return r.text();
}

/** Waits until the command ended (woken by apps.events); returns its state. */
async function ended(id: string): Promise<{ state: string; error: string | null }> {
  return watch.until(`command ${id}`, async () => {
    const r = await s.c.db().execute({ sql: "SELECT state, error FROM commands WHERE id = ?", args: [id] });
    const row = r.rows[0] as unknown as { state: string; error: string | null } | undefined;
    return row && (row.state === "done" || row.state === "failed") && row;
  });
}

const atCommit = (sha: string) =>
  watch.until(`RUNNING at ${sha.slice(0, 8)}`, async () => {
    const a = await app();
    return a.status === "RUNNING" && a.health === "reachable" && a.commitSha === sha && a;
  });

describe("deploy history and rollback through the console", () => {
  let one: string;
  let two: string;

  it("records each deploy, newest first, with commit, ref, who and outcome", async () => {
    one = (await s.git.createRepo(NAME, { "index.html": "one\n" })).sha;
    port = await freePort();
    const created = await s.c.mutate<AppItem>("apps.create", { name: NAME, repository: s.repoUrl(NAME), startCommand: "httpd -f -p $PORT -h /app", port, hostId: s.hostId, gitRef: "main" });
    expect(created.status).toBe(200);
    expect(created.body.result!.data).toMatchObject({ gitRef: "main", gitSubmodules: false });
    await atCommit(one);
    // nothing earlier to go back to yet
    const none = await s.c.mutate("apps.rollback", { name: NAME });
    expect(none.status).toBe(412);
    expect(none.body.error!.data.fields).toHaveProperty("commitSha");
    two = await s.git.commit(NAME, { "index.html": "two\n" });
    const r = await s.c.mutate<ActionReply>("apps.reinstall", { name: NAME });
    expect((await ended(r.body.result!.data.commandId!)).state).toBe("done");
    await atCommit(two);
    expect(await page()).toBe("two\n");

    const items = await history();
    expect(items.map((d) => [d.action, d.commitSha, d.ref, d.refKind, d.outcome])).toEqual([
      ["reinstall", two, "main", "branch", "ok"],
      ["provision", one, "main", "branch", "ok"],
    ]);
    expect(items[0]!.actor).toMatch(/^(token|user):/);
    expect(Date.parse(items[0]!.at)).toBeGreaterThanOrEqual(Date.parse(items[1]!.at));
  });

  it("apps.rollback redeploys the previous commit, keeps untracked files and leaves gitRef as it was", async () => {
    const workspace = join(s.workspaceRoot, NAME);
    await mkdir(join(workspace, "models"), { recursive: true });
    await writeFile(join(workspace, "models", "x.bin"), "weights");
    const r = await s.c.mutate<ActionReply>("apps.rollback", { name: NAME });
    expect(r.status).toBe(200);
    expect((await ended(r.body.result!.data.commandId!)).state).toBe("done");
    const back = await atCommit(one);
    expect(back.gitRef).toBe("main");
    expect(await page()).toBe("one\n");
    expect(await readFile(join(workspace, "models", "x.bin"), "utf8")).toBe("weights");
    expect((await history())[0]).toMatchObject({ action: "rollback", commitSha: one, ref: "main", outcome: "ok" });
    const audit = await s.c.db().execute({ sql: "SELECT action, detail FROM audit_log WHERE target = ? AND action = 'app.rollback'", args: [NAME] });
    expect(JSON.parse(String(audit.rows[0]!.detail))).toMatchObject({ commitSha: one });

    // the given commit, from the history: forward again
    const fwd = await s.c.mutate<ActionReply>("apps.rollback", { name: NAME, commitSha: two });
    expect((await ended(fwd.body.result!.data.commandId!)).state).toBe("done");
    await atCommit(two);
  });

  it("a commit this app never deployed is refused naming commitSha, and nothing is queued", async () => {
    const before = (await s.c.db().execute("SELECT count(*) AS n FROM commands")).rows[0]!.n;
    const r = await s.c.mutate("apps.rollback", { name: NAME, commitSha: "1".repeat(40) });
    expect(r.status).toBe(400);
    expect(r.body.error!.data.fields).toHaveProperty("commitSha");
    expect((await s.c.db().execute("SELECT count(*) AS n FROM commands")).rows[0]!.n).toBe(before);
  });

  it("a failed deploy is recorded as failed with its reason; the app keeps running the code it had", async () => {
    const u = await s.c.mutate<AppItem>("apps.update", { name: NAME, gitRef: "no-such-branch" });
    expect(u.status).toBe(200);
    const latest = await watch.until("the failed deploy in the history", async () => {
      const [d] = await history();
      return d?.outcome === "failed" && d;
    });
    expect(latest).toMatchObject({ action: "reinstall", ref: "no-such-branch" });
    expect(latest.error).toContain('gitRef "no-such-branch" is neither a branch nor a tag');
    expect(await page()).toBe("two\n");
  });

  it("apps.apply with a tag answers the reinstall it queued; the app stays on the tag", async () => {
    await s.git.tag(NAME, "v-one", one);
    await s.git.commit(NAME, { "index.html": "three\n" });
    const spec = { name: NAME, repository: s.repoUrl(NAME), startCommand: "httpd -f -p $PORT -h /app", port, hostId: s.hostId, gitRef: "v-one" };
    const r = await s.c.mutate<{ changed: string[]; commandId: string | null }>("apps.apply", spec);
    expect(r.status).toBe(200);
    expect(r.body.result!.data.changed).toEqual(["gitRef"]);
    const cmd = await s.c.db().execute({ sql: "SELECT action FROM commands WHERE id = ?", args: [r.body.result!.data.commandId!] });
    expect(cmd.rows[0]).toMatchObject({ action: "reinstall" });
    expect((await ended(r.body.result!.data.commandId!)).state).toBe("done");
    await atCommit(one);
    expect((await history())[0]).toMatchObject({ action: "reinstall", commitSha: one, ref: "v-one", refKind: "tag", outcome: "ok" });
    // the same spec again changes nothing and queues nothing
    expect((await s.c.mutate<{ changed: string[] }>("apps.apply", spec)).body.result!.data.changed).toEqual([]);
  });
});
