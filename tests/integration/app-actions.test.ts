// The whole life of an app through the console's HTTP API, with the built console and a real
// agent process on the real Docker engine, repositories served over smart HTTP on loopback:
// create → RUNNING and serving the repository → killed from outside → STOPPED with the reason →
// start → reinstall to a new commit (untracked files kept; another action meanwhile is refused as
// busy or coalesced) → clean reinstall → update to a new port → restart → host offline (the
// action waits in the outbox and runs when the agent is back) → deinstall leaving nothing behind.
// Plus: a GPU-required template is refused on this GPU-less host, and `docker inspect` of an app
// deployed through the API shows the least-privilege settings.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { docker, inspect, listByLabel } from "../support/docker";
import { freePort } from "../support/net";
import { stackWatching, type AppItem, type ActionReply } from "./stack-support";
import { exists } from "../support/fs";

const NAME = "life-site";
// One stack for the whole file: git server, console and agent on the real Docker engine.
const { s, watch } = await stackWatching(NAME);
let port: number;
let firstSha: string;

const workspace = () => join(s.workspaceRoot, NAME);

async function app(): Promise<AppItem | undefined> {
  return (await s.c.query<AppItem>("apps.get", { name: NAME })).body.result?.data;
}

async function page(p: number, path = "/index.html"): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${p}${path}`, { signal: AbortSignal.timeout(2000) });
  if (!r.ok) throw new Error(`HTTP ${r.status}`);
  return r.text();
}

async function command(id: string): Promise<{ state: string; action: string; error: string | null }> {
  const r = await s.c.db().execute({ sql: "SELECT state, action, error FROM commands WHERE id = ?", args: [id] });
  return r.rows[0] as unknown as { state: string; action: string; error: string | null };
}

async function commandsOfApp(): Promise<{ id: string; action: string; state: string }[]> {
  const r = await s.c.db().execute({ sql: "SELECT id, action, state FROM commands WHERE app_name = ? ORDER BY rowid", args: [NAME] });
  return r.rows as unknown as { id: string; action: string; state: string }[];
}

/** Waits (woken by apps.events) until the command ended; fails the test if it failed. */
async function finished(id: string): Promise<void> {
  const row = await watch.until(`command ${id} to finish`, async () => {
    const c = await command(id);
    return (c.state === "done" || c.state === "failed") && c;
  });
  expect(row, `command ${row.action} ${id}: ${row.error}`).toMatchObject({ state: "done" });
}

async function runningAndReachable(): Promise<AppItem> {
  return watch.until("RUNNING and reachable", async () => {
    const a = await app();
    return a?.status === "RUNNING" && a.health === "reachable" && a;
  });
}

async function containerIds(): Promise<string[]> {
  return listByLabel(`dcc.app=${NAME}`);
}

async function lifecycle(verb: string, input: Record<string, unknown> = {}) {
  return s.c.mutate<ActionReply>(`apps.${verb}`, { name: NAME, ...input });
}

describe("app lifecycle through the console API, on a real agent and Docker engine", () => {
  it("create: STARTING at once, then RUNNING and reachable, serving the repository's content", async () => {
    const repo = await s.git.createRepo(NAME, { "index.html": "<h1>version one</h1>\n" });
    firstSha = repo.sha;
    port = await freePort();
    const created = await s.c.mutate<AppItem>("apps.create", {
      name: NAME,
      repository: s.repoUrl(NAME),
      startCommand: "httpd -f -p $PORT -h /app",
      port,
      hostId: s.hostId,
    });
    expect(created.status).toBe(200);
    expect(created.body.result!.data).toMatchObject({ name: NAME, status: "STARTING", hostId: s.hostId, commitSha: null });

    const running = await runningAndReachable();
    expect(running.commitSha).toBe(repo.sha);
    expect(running.lastError).toBeNull();
    expect(await page(port)).toBe("<h1>version one</h1>\n");
    // The live stream told the story: created STARTING, deploy progress, then RUNNING.
    await watch.message((m) => m.type === "status" && m.status === "RUNNING");
    expect(watch.messages[0]).toMatchObject({ type: "created", app: NAME, status: "STARTING" });
    expect(watch.of("progress").length).toBeGreaterThan(0);
  });

  it("docker inspect of the app deployed through the API shows least privilege", async () => {
    const [id] = await containerIds();
    expect(id).toBeTruthy();
    const info = await inspect(id!);
    const [uid, gid] = info.Config.User.split(":");
    expect(info.Config.User).toMatch(/^\d+:\d+$/);
    expect(Number(uid)).toBeGreaterThan(0);
    expect(Number(gid)).toBeGreaterThan(0);
    expect(info.HostConfig.CapDrop).toEqual(["ALL"]);
    expect(info.HostConfig.CapAdd ?? []).toEqual([]);
    expect(info.HostConfig.SecurityOpt).toContain("no-new-privileges:true");
    expect(info.HostConfig.Privileged).toBe(false);
    expect(info.HostConfig.NetworkMode).not.toBe("host");
    expect(info.HostConfig.PidMode ?? "").not.toBe("host");
    expect(info.HostConfig.IpcMode).not.toBe("host");
    expect(info.HostConfig.UsernsMode ?? "").not.toBe("host");
    expect(info.HostConfig.Devices ?? []).toEqual([]);
    // The workspace, and the agent's secrets folder of the app (read-only), nothing else.
    expect(info.Mounts).toHaveLength(2);
    expect(info.Mounts.find((m) => m.Destination === "/app")).toMatchObject({ Type: "bind", Source: workspace(), RW: true });
    expect(info.Mounts.find((m) => m.Destination === "/run/dcc-secrets")).toMatchObject({ Type: "bind", RW: false });
    const binds = JSON.stringify([info.Mounts, info.HostConfig.Binds ?? [], info.HostConfig.Mounts ?? []]);
    expect(binds).not.toContain("docker.sock");
    expect(info.Config.Env).toEqual(expect.arrayContaining(["HOME=/app", `PORT=${port}`]));
    expect(info.Config.Labels).toMatchObject({ "dcc.app": NAME, "dcc.host": s.hostId });
  });

  it("docker kill from outside: STOPPED reported with the reason; stop while stopped is harmless; start brings it back", async () => {
    const [id] = await containerIds();
    const from = watch.messages.length;
    await docker(["kill", id!]);
    const stopped = await watch.until("STOPPED", async () => {
      const a = await app();
      return a?.status === "STOPPED" && a;
    }, 15_000);
    expect(stopped.lastError).toMatch(/killed/);
    const event = await watch.message((m) => m.type === "status" && m.status === "STOPPED", from);
    expect(event).toMatchObject({ app: NAME, exitCode: 137 });
    expect(String(event.lastError)).toMatch(/killed/);
    await expect(page(port)).rejects.toThrow();

    // stop, twice, while stopped: each is done, nothing breaks, the container stays as it is
    for (let i = 0; i < 2; i++) {
      const r = await lifecycle("stop");
      expect(r.status).toBe(200);
      expect(r.body.result!.data.queued).toBe(false);
      await finished(r.body.result!.data.commandId!);
      expect(await app()).toMatchObject({ status: "STOPPED" });
    }
    expect(await containerIds()).toEqual([id]);
    expect((await inspect(id!)).State.Running).toBe(false);

    const started = await lifecycle("start");
    expect(started.status).toBe(200);
    expect(started.body.result!.data.app).toMatchObject({ status: "STARTING", phase: "starting" });
    await finished(started.body.result!.data.commandId!);
    const again = await runningAndReachable();
    expect(again.lastError).toBeNull();
    expect(await page(port)).toBe("<h1>version one</h1>\n");
  });

  it("reinstall: new commit served, untracked files kept; meanwhile other actions are refused as busy or coalesced", async () => {
    const sha2 = await s.git.commit(NAME, { "index.html": "<h1>version two</h1>\n" });
    expect(sha2).not.toBe(firstSha);
    await mkdir(join(workspace(), "models"), { recursive: true });
    await writeFile(join(workspace(), "models", "weights.bin"), "untracked model data");
    const [before] = await containerIds();

    // Hold the agent's git fetch at the gate, so the reinstall is provably still in flight.
    s.gate.hold();
    let reinstallId: string;
    try {
      const r = await lifecycle("reinstall");
      expect(r.status).toBe(200);
      expect(r.body.result!.data).toMatchObject({ queued: false, app: { status: "STARTING", phase: "reinstalling" } });
      reinstallId = r.body.result!.data.commandId!;
      await watch.until("the agent's fetch to reach the gate", async () => s.gate.holding > 0, 20_000, 100);
      expect((await command(reinstallId)).state).toBe("delivered");
      const commandsBefore = await commandsOfApp();

      // the same reinstall again is coalesced into the one in flight
      const same = await lifecycle("reinstall", { clean: false });
      expect(same.status).toBe(200);
      expect(same.body.result!.data.commandId).toBe(reinstallId);
      // anything else that would touch the container answers CONFLICT (busy), naming the app
      for (const [verb, input] of [["start", {}], ["restart", {}], ["reinstall", { clean: true }]] as const) {
        const busy = await lifecycle(verb, input);
        expect(busy.status, verb).toBe(409);
        expect(busy.body.error!.data.code).toBe("CONFLICT");
        expect(busy.body.error!.data.fields?.name).toMatch(/busy: reinstall/);
      }
      expect(await commandsOfApp()).toEqual(commandsBefore);
    } finally {
      s.gate.release();
    }

    await finished(reinstallId);
    const a = await runningAndReachable();
    expect(a.commitSha).toBe(sha2);
    expect((await app())!.commitSha).toBe(sha2);
    expect(await watch.until("the new content", async () => (await page(port)).includes("version two"), 20_000, 200)).toBe(true);
    expect(await readFile(join(workspace(), "models", "weights.bin"), "utf8")).toBe("untracked model data");
    const [after] = await containerIds();
    expect(after).not.toBe(before); // the container was recreated
  });

  it("clean reinstall wipes the untracked files and keeps serving the commit", async () => {
    const r = await lifecycle("reinstall", { clean: true });
    expect(r.status).toBe(200);
    await finished(r.body.result!.data.commandId!);
    await runningAndReachable();
    expect(await exists(join(workspace(), "models"))).toBe(false);
    expect(await exists(join(workspace(), "index.html"))).toBe(true);
    expect(await page(port)).toBe("<h1>version two</h1>\n");
  });

  it("update to a new port recreates the container, answering on the new port only", async () => {
    const [before] = await containerIds();
    const port2 = await freePort();
    const r = await s.c.mutate<AppItem>("apps.update", { name: NAME, port: port2 });
    expect(r.status).toBe(200);
    expect(r.body.result!.data).toMatchObject({ port: port2, status: "STARTING" });
    const [update] = (await commandsOfApp()).filter((c) => c.action === "update");
    expect(update).toBeTruthy();
    await finished(update!.id);
    await runningAndReachable();
    expect(await page(port2)).toBe("<h1>version two</h1>\n");
    await expect(page(port)).rejects.toThrow();
    const [after] = await containerIds();
    expect(after).not.toBe(before);
    const info = await inspect(after!);
    expect(info.Config.Env).toContain(`PORT=${port2}`);
    expect(info.NetworkSettings.Ports?.[`${port2}/tcp`]?.[0]?.HostPort).toBe(String(port2));
    port = port2;
  });

  it("restart: RUNNING again, same container started anew", async () => {
    const [id] = await containerIds();
    const startedAt = (await inspect(id!)).State.StartedAt;
    const r = await lifecycle("restart");
    expect(r.status).toBe(200);
    expect(r.body.result!.data.app).toMatchObject({ status: "STARTING", phase: "restarting" });
    await finished(r.body.result!.data.commandId!);
    await runningAndReachable();
    expect(await containerIds()).toEqual([id]);
    expect((await inspect(id!)).State.StartedAt).not.toBe(startedAt);
    expect(await page(port)).toBe("<h1>version two</h1>\n");
  });

  it("host offline: the action is queued (and says so), and runs once the agent is back", async () => {
    await s.agent.stop();
    await watch.until("host offline", async () => {
      const h = await s.c.query<{ online: boolean }>("hosts.get", { id: s.hostId });
      return h.body.result?.data.online === false;
    }, 20_000, 100);

    const r = await lifecycle("stop");
    expect(r.status).toBe(200);
    expect(r.body.result!.data.queued).toBe(true);
    expect(r.body.result!.data.app!.phase).toMatch(/queued: host offline/);
    const id = r.body.result!.data.commandId!;
    expect((await command(id)).state).toBe("pending");
    expect((await app())!.phase).toMatch(/queued/);
    // nothing ran: the app still serves
    expect(await page(port)).toBe("<h1>version two</h1>\n");

    await s.restartAgent();
    await finished(id);
    await watch.until("STOPPED after the queued stop", async () => (await app())?.status === "STOPPED", 20_000);
    await expect(page(port)).rejects.toThrow();
    const [cid] = await containerIds();
    expect((await inspect(cid!)).State.Running).toBe(false);
    expect((await app())!.phase).toBeNull();
  });

  it("deinstall: the record goes, and no container, network or workspace is left", async () => {
    expect(await exists(workspace())).toBe(true);
    const r = await lifecycle("deinstall");
    expect(r.status).toBe(200);
    await watch.until("apps.get 404", async () => (await s.c.query("apps.get", { name: NAME })).status === 404);
    await watch.message((m) => m.type === "deleted");
    expect(await containerIds()).toEqual([]);
    expect(await docker(["ps", "-a", "-q", "--filter", `label=com.docker.compose.project=${NAME}`])).toBe("");
    expect(await docker(["network", "ls", "-q", "--filter", `label=dcc.app=${NAME}`])).toBe("");
    expect(await docker(["network", "ls", "-q", "--filter", `label=com.docker.compose.project=${NAME}`])).toBe("");
    expect(await docker(["network", "ls", "-q", "--filter", `name=${NAME}_default`])).toBe("");
    expect(await exists(workspace())).toBe(false);
    // deinstalling again answers NOT_FOUND: there is nothing left to remove
    expect((await lifecycle("deinstall")).status).toBe(404);
  });
});

describe("GPU requirement on this GPU-less host", () => {
  it("refuses a GPU-required template placed on this host, naming hostId with the reason; without hostId it waits for a GPU host", async () => {
    const host = (await s.c.query<{ facts: { nvidia?: { gpus: unknown[] } | null } }>("hosts.get", { id: s.hostId })).body.result!.data;
    expect(host.facts.nvidia?.gpus ?? []).toEqual([]);
    const tpl = (await s.c.query<{ gpu: { mode: string } }>("templates.get", { slug: "stable-diffusion-webui" })).body.result!.data;
    expect(tpl.gpu.mode).toBe("required");
    const count = async () => Number((await s.c.db().execute("SELECT count(*) AS n FROM apps")).rows[0].n);
    const commands = async () => Number((await s.c.db().execute("SELECT count(*) AS n FROM commands")).rows[0].n);
    const [apps0, commands0] = [await count(), await commands()];
    const port = await freePort();

    const refused = await s.c.mutate("apps.create", { name: "sd-here", templateId: "stable-diffusion-webui", port, hostId: s.hostId });
    expect(refused.status).toBe(400);
    expect(refused.body.error!.data.code).toBe("BAD_REQUEST");
    expect(refused.body.error!.data.fields?.hostId).toMatch(/GPU/);
    expect(refused.body.error!.message).toMatch(/^hostId .*requires one/);
    expect(await count()).toBe(apps0);

    const waiting = await s.c.mutate<AppItem>("apps.create", { name: "sd-wait", templateId: "stable-diffusion-webui", port });
    expect(waiting.status).toBe(200);
    expect(waiting.body.result!.data).toMatchObject({ hostId: null, status: "STOPPED", gpu: { mode: "required" } });
    expect(waiting.body.result!.data.phase).toMatch(/waiting for a host with a free GPU/);
    expect(await commands()).toBe(commands0); // nothing was sent to any agent
    expect(await listByLabel("dcc.app=sd-wait")).toEqual([]);
    expect((await s.c.mutate("apps.deinstall", { name: "sd-wait" })).status).toBe(200);
    expect((await s.c.query("apps.get", { name: "sd-wait" })).status).toBe(404);
  });
});
