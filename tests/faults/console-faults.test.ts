// Fault matrix, part 3: the console and the disk: the console SIGKILLed mid-deploy and restarted,
// two console processes on one database each with a live client, and the agent's disk full (a
// small tmpfs holding its state and workspaces) during a clone and while journaling.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { docker } from "../support/docker";
import { startConsole, type RunningConsole } from "../support/console";
import { freePort } from "../support/net";
import { openSse, type SseReader } from "../support/sse";
import { FaultStack } from "./harness";
import { FAULT_CONSOLE_ENV } from "./harness";
import {
  act,
  commandsOf,
  containersOf,
  createApp,
  deployApp,
  ledger,
  poll,
  printLags,
  reality,
  realLight,
  recover,
  runsOf,
  settle,
  sleep,
  view,
} from "./truth";

const run = promisify(execFile);
const cleanup: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  printLags("console and disk faults");
  for (const f of cleanup.splice(0).reverse()) await f().catch((e) => console.error(e));
});

describe("fault matrix: the console and the disk", () => {
  it("console SIGKILLed mid-deploy and restarted: the deploy finishes once and the console shows the truth", async () => {
    const sc = "console SIGKILL mid-deploy";
    const s = await FaultStack.start();
    cleanup.push(() => s.close());
    s.forge.hold();
    const app = await createApp(s, { prefix: "ckill" });
    await poll("the agent's clone to wait at the forge", async () => s.forge.holding > 0, 60_000);
    const [provision] = await commandsOf(s.c, app.name);
    expect(provision).toBeTruthy();
    await s.c.stop(true);
    s.forge.pass();
    // The agent finishes while the console is gone; the result waits in its journal.
    await s.agent.waitForLog("command executed", (e) => e.id === provision!.id, 90_000);
    expect(realLight(await reality(s, app))).toBe("green");
    await s.restartConsole();
    await settle(s, app, "green", { scenario: sc });
    const rows = await ledger(s, app);
    expect(rows.find((r) => r.id === provision!.id)?.state).toBe("done");
    expect(runsOf(s, provision!.id)).toBe(1);
    // And it still reacts: a kill is seen, Start brings it back.
    const [id] = await containersOf(s, app.name);
    await docker(["kill", id!]);
    await settle(s, app, "red", { scenario: `${sc} (kill after restart)` });
    await recover(s, app, "start", { scenario: sc });
    await ledger(s, app);
  });

  it("two console processes on one database, a live client on each: every change made through either is seen on both, nothing skipped", async () => {
    const sc = "two consoles";
    const s = await FaultStack.start();
    cleanup.push(() => s.close());
    const a = s.c;
    const b: RunningConsole = await startConsole({ env: FAULT_CONSOLE_ENV, dataDir: a.dataDir });
    cleanup.push(() => b.stop(true));
    const seen = new Map<string, Record<string, unknown>[]>();
    const readers: [string, SseReader][] = [];
    for (const [label, c] of [["a", a], ["b", b]] as const) {
      const sse = await openSse(`${c.url}/api/trpc/apps.events`, c.authHeaders);
      await sse.next((e) => e.event === "connected", 10_000);
      readers.push([label, sse]);
      seen.set(label, []);
    }
    cleanup.push(async () => readers.forEach(([, r]) => r.close()));
    const drain = async () => {
      for (const [label, r] of readers) {
        for (;;) {
          const e = await r.next(() => true, 50).catch(() => null);
          if (!e) break;
          if (e.event === "message" && e.data) seen.get(label)!.push(JSON.parse(e.data));
        }
      }
    };

    const app = await deployApp(s, { prefix: "two", scenario: sc });
    // Changes through B (B writes STARTING locally), results through A (A holds the agent's socket),
    // a kill observed by the agent (A writes it): interleaved, so each process's events go out
    // between the other's.
    for (const verb of ["stop", "start", "restart"]) {
      const r = await b.mutate<{ commandId: string }>(`apps.${verb}`, { name: app.name });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      await ledger(s, app, 60_000);
      await drain();
    }
    // Both processes writing at once: restarts through A (results arrive on A's socket) while B
    // records a burst of its own changes (updates of an app that waits for a GPU host).
    const idle = `${app.name}-idle`.slice(0, 63);
    await s.git.createRepo(idle, { "index.html": "idle\n" });
    const created = await b.mutate("apps.create", { name: idle, repository: s.repoUrl(idle), startCommand: "true", port: await freePort(), gpu: { mode: "required" } });
    expect(created.status, JSON.stringify(created.body)).toBe(200);
    const ports = [await freePort(), await freePort()];
    await Promise.all([
      (async () => {
        for (let i = 0; i < 3; i++) {
          expect((await a.mutate("apps.restart", { name: app.name })).status).toBe(200);
          await ledger(s, app, 60_000);
        }
      })(),
      (async () => {
        for (let i = 0; i < 30; i++) expect((await b.mutate("apps.update", { name: idle, port: ports[i % 2] })).status).toBe(200);
      })(),
    ]);
    await drain();
    const [id] = await containersOf(s, app.name);
    await docker(["kill", id!]);
    await poll("B's view to agree", async () => (await view(b, app.name))?.status === "STOPPED", 20_000);
    const r = await a.mutate("apps.start", { name: app.name });
    expect(r.status).toBe(200);
    await ledger(s, app, 60_000);
    await settle(s, app, "green", { scenario: sc });
    await poll("B's apps.get to agree", async () => {
      const v = await view(b, app.name);
      return v?.status === "RUNNING" && v.health === "reachable";
    }, 20_000);

    // Quiet now: both streams must have carried the same stored events.
    await sleep(1500);
    await drain();
    const ids = (label: string) =>
      new Set(seen.get(label)!.filter((m) => (m.app === app.name || m.app === idle) && typeof m.id === "number" && (m.id as number) > 0).map((m) => m.id as number));
    const onA = ids("a");
    const onB = ids("b");
    const missingOnB = [...onA].filter((x) => !onB.has(x));
    const missingOnA = [...onB].filter((x) => !onA.has(x));
    expect({ missingOnA, missingOnB }).toEqual({ missingOnA: [], missingOnB: [] });
    expect(onA.size).toBeGreaterThan(5);
    // The last status each client saw is the truth.
    const lastStatus = (label: string) => seen.get(label)!.filter((m) => m.app === app.name && m.status).at(-1)?.status;
    expect(lastStatus("a")).toBe("RUNNING");
    expect(lastStatus("b")).toBe("RUNNING");
  });

  it("disk full (small tmpfs for the agent's state and workspaces): a clone fails with the reason, a command while journaling is impossible is answered; freed, one action recovers", async () => {
    const sc = "disk full";
    const mnt = await mkdtemp(join(tmpdir(), "dcc-fault-disk-"));
    await run("mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt]);
    cleanup.push(async () => {
      await run("umount", ["-l", mnt]).catch(() => {});
      await rm(mnt, { recursive: true, force: true });
    });
    const s = await FaultStack.start({ agentRoot: mnt });
    cleanup.push(() => s.close()); // runs before the unmount (cleanup runs last-in first)
    const small = await deployApp(s, { prefix: "dsmall", scenario: sc });

    // A clone bigger than the disk.
    const big = await createApp(s, { prefix: "dbig", files: { "weights.txt": randomBytes(12 * 1024 * 1024).toString("base64") } });
    const rows = await ledger(s, big, 120_000);
    expect(rows.at(-1)!.state).toBe("failed");
    await settle(s, big, "red", { scenario: `${sc} (clone)`, reason: /space|ENOSPC|disk|full/i });
    expect(await containersOf(s, big.name)).toEqual([]);
    // The small app is untouched.
    await settle(s, small, "green", { scenario: `${sc} (neighbour)` });

    // Fill what is left, then ask the agent to do something: it must answer, never go silent.
    const filler = join(mnt, "filler");
    // Each dd stops at ENOSPC; smaller blocks take what the bigger ones left.
    await run("dd", ["if=/dev/zero", `of=${filler}`, "bs=64k"]).catch(() => {});
    for (const bs of ["4k", "1"]) await run("dd", ["if=/dev/zero", `of=${filler}-${bs}`, `bs=${bs}`]).catch(() => {});
    const full = await run("df", ["-B1", "--output=avail", mnt]).then((r) => r.stdout.trim().split("\n").pop()).catch(() => "?");
    console.log(`disk full: ${full} bytes left on the agent's disk`);
    await act(s, "restart", { name: small.name });
    const after = await ledger(s, small, 120_000, { journal: false });
    console.log(`disk full while journaling: restart ended ${after.at(-1)!.state}${after.at(-1)!.error ? ` (${after.at(-1)!.error})` : ""}`);
    const now = realLight(await reality(s, small));
    await settle(s, small, now === "amber" ? "green" : now, { scenario: `${sc} (journal full)`, realityCapMs: 30_000 });

    // Space again: one action each.
    for (const f of [filler, `${filler}-4k`, `${filler}-1`]) await rm(f, { force: true });
    await run("mount", ["-o", "remount,size=128m", mnt]);
    await writeFile(join(mnt, ".remounted"), "");
    await recover(s, small, "restart", { scenario: sc });
    await recover(s, big, "start", { scenario: sc });
    await ledger(s, big);
    await ledger(s, small, 60_000, { journal: false });
  });
});
