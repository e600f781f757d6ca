// recordDeploy on a real libSQL file with the committed migrations: what a command's end records,
// that a rollback is named as one, and that each app keeps only its newest DEPLOYS_KEPT_PER_APP.
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migratedDb } from "../../tests/support/db";
import { DEPLOYS_KEPT_PER_APP, apps, deploys, type Command } from "../../db/schema";
import { listDeploys, recordDeploy } from "./deploys.server";

const file = await migratedDb("dcc-deploys-");
const { db } = file;
beforeAll(async () => {
  for (const [id, name, port] of [["a1", "one", 7001], ["a2", "two", 7002]] as const) {
    await db.insert(apps).values({ id, name, repository: "https://example.com/r.git", startCommand: "run", port });
  }
});
afterAll(() => file.dispose());

const sha = (n: number) => n.toString(16).padStart(40, "0");
let seq = 0;
function command(appId: string, action: string, params: Record<string, unknown> = {}): Command {
  seq++;
  return { id: `c${seq}`, hostId: "h", appId, appName: null, action, params, state: "done", attempts: 1, issuedAt: "", expiresAt: "", deliveredAt: null, deadlineAt: null, finishedAt: null, result: null, error: null, createdBy: "user:alice" };
}

describe("recordDeploy", () => {
  it("records deploy-like results with commit, ref, who and outcome; a pinned reinstall is a rollback; other actions are not deploys", async () => {
    await recordDeploy(db, command("a1", "provision", { spec: { gitRef: "main" } }), { ok: true, result: { commitSha: sha(1), ref: "main", refKind: "branch" } });
    await recordDeploy(db, command("a1", "reinstall", { commitSha: sha(1) }), { ok: true, result: { commitSha: sha(1), ref: "main", refKind: "branch" } });
    await recordDeploy(db, command("a1", "update", { spec: { gitRef: "v2" } }), { ok: false, error: "gitRef \"v2\" is neither a branch nor a tag" });
    await recordDeploy(db, command("a1", "restart"), { ok: true, result: { commitSha: sha(1) } });
    await recordDeploy(db, command("a1", "reinstall"), { ok: true, result: { commitSha: "not-a-sha; rm -rf /", ref: "x".repeat(500), refKind: "evil" } });
    const items = await listDeploys({ db }, "one");
    expect(items.map((d) => [d.action, d.commitSha, d.ref, d.refKind, d.outcome, d.actor])).toEqual([
      ["reinstall", null, "x".repeat(200), null, "ok", "user:alice"],
      ["update", null, "v2", null, "failed", "user:alice"],
      ["rollback", sha(1), "main", "branch", "ok", "user:alice"],
      ["provision", sha(1), "main", "branch", "ok", "user:alice"],
    ]);
    expect(items[1]!.error).toContain("neither a branch nor a tag");
  });

  it(`keeps the newest ${DEPLOYS_KEPT_PER_APP} per app and leaves other apps' history alone`, async () => {
    await recordDeploy(db, command("a2", "provision"), { ok: true, result: { commitSha: sha(2) } });
    for (let i = 0; i < DEPLOYS_KEPT_PER_APP + 10; i++) await recordDeploy(db, command("a1", "reinstall"), { ok: true, result: { commitSha: sha(100 + i) } });
    const kept = await db.select().from(deploys).where(eq(deploys.appId, "a1"));
    expect(kept).toHaveLength(DEPLOYS_KEPT_PER_APP);
    expect(kept.map((d) => d.commitSha)).toContain(sha(100 + DEPLOYS_KEPT_PER_APP + 9));
    expect(kept.map((d) => d.commitSha)).not.toContain(sha(100 + 9));
    expect(await listDeploys({ db }, "two")).toHaveLength(1);
  });
});
