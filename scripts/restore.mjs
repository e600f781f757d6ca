#!/usr/bin/env node
// Restores a backup written by scripts/backup.mjs on this (fresh) machine: checks every checksum
// first, then puts the database file back (the console must be stopped), the console's data dir
// (keys, session secret, the local agent's state), an agent's state dir and the workspaces under
// the workspace root. Once the console and its agents start again the apps come back at their
// recorded commits (see README.md, "Backup and restore").
import { createClient } from "@libsql/client";
import { existsSync } from "node:fs";
import { copyFile, mkdir, open, readdir, rename, rm } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import {
  APP_NAME,
  REMOTE_DATABASE_NOTE,
  UsageError,
  consolePaths,
  databaseFile,
  formatSize,
  readManifest,
  run,
  sha256File,
  stamp,
} from "./lib/backup-common.mjs";

const PARTS = ["database", "data", "agent", "workspaces"];

const USAGE = `Usage: node scripts/restore.mjs BACKUP_DIR [options]

Restores BACKUP_DIR (a dcc-<time> folder written by scripts/backup.mjs). Stop the console (and
the agent, when restoring its state) first. Every checksum in manifest.json is verified before
anything is written.

Options:
  --database-url URL     where the database goes (DATABASE_URL; default file:$DCC_DATA_DIR/dcc.db)
  --data-dir DIR         the console's data dir (DCC_DATA_DIR; default ./data)
  --workspace-root DIR   where workspaces go (DCC_WORKSPACE_ROOT; default as the console picks it)
  --agent-state-dir DIR  where an agent state dir in the backup goes (default: its recorded path)
  --only PARTS           comma-separated subset of: ${PARTS.join(", ")}
  --owner USER[:GROUP]   give restored workspaces and agent state to this user (the agent's
                         service user, e.g. dcc-agent, whose uid may differ on a new machine)
  --force                replace what is there: the old database and non-empty workspace folders
                         are moved aside (*.pre-restore-<time>), never deleted
  --dry-run              verify the backup and print what would be restored
  --start-apps           second step, once the console runs again: ask it (apps.start through
                         the API) to start every app the backup recorded as RUNNING or STARTING;
                         the agent recreates a missing container from its restored compose file
                         and workspace, at the restored commit. Writes no files.
  --console URL          with --start-apps: the console (default http://127.0.0.1:$PORT or :3000)
  --token TOKEN          with --start-apps: an operator API token (DCC_ADMIN_TOKEN)
  --wait SECONDS         with --start-apps: how long to wait for the console to answer (default 120)
  --help                 this text

After a restore: start the console (npm start) and the agents. The database keeps every app,
its host and its commit; the restored workspaces hold the work trees at those commits; the
restored agent state keeps the agent's identity (no new enrolment), its git directories and its
compose files. Files the backup left out (--exclude-large / --exclude-paths) are listed below and
must be fetched again (e.g. model downloads).
`;

function parse(argv, env) {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      "database-url": { type: "string" },
      "data-dir": { type: "string" },
      "workspace-root": { type: "string" },
      "agent-state-dir": { type: "string" },
      only: { type: "string" },
      owner: { type: "string" },
      force: { type: "boolean" },
      "dry-run": { type: "boolean" },
      "start-apps": { type: "boolean" },
      console: { type: "string" },
      token: { type: "string" },
      wait: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return { help: true };
  if (positionals.length !== 1) throw new UsageError("give exactly one BACKUP_DIR");
  const only = values.only ? values.only.split(",").map((s) => s.trim()) : PARTS;
  for (const p of only) if (!PARTS.includes(p)) throw new UsageError(`--only: unknown part ${JSON.stringify(p)} (parts: ${PARTS.join(", ")})`);
  if (values.owner !== undefined && !/^[a-z_][a-z0-9_-]{0,31}(:[a-z_][a-z0-9_-]{0,31})?$/.test(values.owner) && !/^\d+(:\d+)?$/.test(values.owner)) {
    throw new UsageError("--owner must be USER[:GROUP] or UID[:GID]");
  }
  return {
    backup: resolve(positionals[0]),
    ...consolePaths(env, { dataDir: values["data-dir"], databaseUrl: values["database-url"], workspaceRoot: values["workspace-root"] }),
    agentStateDir: values["agent-state-dir"] ? resolve(values["agent-state-dir"]) : undefined,
    only: new Set(only),
    owner: values.owner,
    force: Boolean(values.force),
    dryRun: Boolean(values["dry-run"]),
    startApps: Boolean(values["start-apps"]),
    console: (values.console ?? `http://127.0.0.1:${env.PORT || 3000}`).replace(/\/+$/, ""),
    token: values.token ?? env.DCC_ADMIN_TOKEN,
    waitMs: parseWait(values.wait),
  };
}

function parseWait(text) {
  if (text === undefined) return 120_000;
  if (!/^\d{1,5}$/.test(text)) throw new UsageError("--wait must be a number of seconds");
  return Number(text) * 1000;
}

/**
 * Asks the running console to start each app the backup recorded as RUNNING or STARTING. A start
 * is idempotent and waits in the outbox while the app's host is offline.
 */
async function startApps(opts, manifest, say) {
  if (!/^https?:\/\//.test(opts.console)) throw new UsageError("--console must be an http:// or https:// URL");
  const headers = { "content-type": "application/json", ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}) };
  const deadline = Date.now() + opts.waitMs;
  for (;;) {
    try {
      if ((await fetch(`${opts.console}/healthz`)).ok) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new UsageError(`${opts.console} did not answer /healthz within ${opts.waitMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 500));
  }
  let failed = 0;
  for (const a of manifest.apps ?? []) {
    if (a.status !== "RUNNING" && a.status !== "STARTING") continue;
    if (!a.hostId) {
      say(`  ${a.name}: no host recorded; it starts when one connects`);
      continue;
    }
    const r = await fetch(`${opts.console}/api/trpc/apps.start`, { method: "POST", headers, body: JSON.stringify({ name: a.name }) });
    const body = await r.json().catch(() => ({}));
    if (r.status === 409) {
      say(`  ${a.name}: already on its way (${body?.error?.message ?? "busy"})`);
    } else if (r.ok) {
      const queued = body?.result?.data?.queued;
      say(`  ${a.name}: start ${queued ? "queued until its host connects" : "sent"} (recorded commit ${a.commitSha ?? "none"})`);
    } else {
      failed++;
      say(`  ${a.name}: start refused: ${body?.error?.message ?? r.status}`);
    }
  }
  if (failed) throw new Error(`${failed} app(s) could not be started`);
}

/** Refuses a file name in the manifest that could point outside the backup folder. */
function inBackup(backup, rel) {
  if (typeof rel !== "string" || !/^[a-z]+\/[A-Za-z0-9._-]+$/.test(rel)) throw new UsageError(`manifest names an unexpected file ${JSON.stringify(rel)}`);
  return join(backup, rel);
}

async function verify(backup, manifest) {
  for (const f of manifest.files) {
    const path = inBackup(backup, f.path);
    if (!existsSync(path)) throw new UsageError(`${f.path} is missing from the backup`);
    const sum = await sha256File(path);
    if (sum !== f.sha256) throw new UsageError(`${f.path}: checksum mismatch (backup damaged?)`);
  }
}

async function nonEmpty(dir) {
  try {
    return (await readdir(dir)).length > 0;
  } catch {
    return false;
  }
}

/**
 * Fails when another connection holds the database: leaving WAL needs every other connection
 * closed, so a running console answers SQLITE_BUSY. It also folds the WAL into the file that is
 * moved aside, so that copy stands alone.
 */
async function assertUnused(file) {
  const c = createClient({ url: `file:${file}`, timeout: 200 });
  try {
    const r = await c.execute("PRAGMA journal_mode = DELETE");
    if (String(r.rows[0]?.[0]).toLowerCase() !== "delete") throw new Error("busy");
  } catch {
    throw new UsageError(`${file} is in use: stop the console (and anything else holding the database) first`);
  } finally {
    c.close();
  }
}

async function fsyncPath(path) {
  const fh = await open(path, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function extract(archive, dir, owner) {
  await mkdir(dir, { recursive: true });
  const asRoot = process.getuid?.() === 0;
  await run("tar", ["--extract", `--file=${archive}`, `--directory=${dir}`, "--numeric-owner", ...(asRoot ? ["--same-owner", "--same-permissions"] : ["--no-same-owner"])]);
  if (owner) await run("chown", ["-R", "--no-dereference", owner.includes(":") ? owner : `${owner}:`, "--", dir]);
}

async function main() {
  let opts;
  try {
    opts = parse(process.argv.slice(2), process.env);
  } catch (e) {
    process.stderr.write(`restore: ${e.message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (opts.help) return void process.stdout.write(USAGE);
  const say = (msg) => process.stdout.write(`${msg}\n`);
  const manifest = await readManifest(opts.backup);
  if (opts.startApps) {
    say(`starting the apps recorded in ${opts.backup} through ${opts.console}`);
    return startApps(opts, manifest, say);
  }
  await verify(opts.backup, manifest);
  say(`backup ${opts.backup} (taken ${manifest.createdAt} on ${manifest.host}, console ${manifest.versions?.console}): ${manifest.files.length} files verified`);
  const aside = `pre-restore-${stamp()}`;
  const plan = [];

  // --- what goes where, checked before anything is written
  const dbFile = opts.only.has("database") && manifest.database ? databaseFile(opts.databaseUrl) : null;
  if (opts.only.has("database") && manifest.database) {
    if (dbFile === null) throw new UsageError(`${opts.databaseUrl} is a remote database; ${REMOTE_DATABASE_NOTE}`);
    if (existsSync(dbFile)) {
      if (!opts.force) throw new UsageError(`${dbFile} exists; pass --force to move it aside and restore over it`);
      await assertUnused(dbFile);
    }
    plan.push(`database → ${dbFile}`);
  }
  const dataTar = opts.only.has("data") && manifest.dataDir ? inBackup(opts.backup, manifest.dataDir.file) : null;
  if (dataTar) plan.push(`console data dir (keys, session secret, local agent state) → ${opts.dataDir}`);
  // The secret key is left out of backups unless --with-secret-key: sealed app secrets, git
  // credentials and registry passwords open only with the key they were sealed with.
  if (dataTar && manifest.dataDir.leftOut?.includes("secret.key") && !process.env.DCC_SECRET_KEY && !existsSync(join(opts.dataDir, "secret.key"))) {
    plan.push(`NOTE: this backup holds no secret key: put the original ${join(opts.dataDir, "secret.key")} back (mode 0600) or set DCC_SECRET_KEY before starting the console, or app secrets will not open`);
  }
  const agentTar = opts.only.has("agent") && manifest.agentStateDir ? inBackup(opts.backup, manifest.agentStateDir.file) : null;
  const agentDir = opts.agentStateDir ?? manifest.agentStateDir?.path;
  if (agentTar) {
    if ((await nonEmpty(agentDir)) && !opts.force) throw new UsageError(`${agentDir} is not empty; pass --force to restore over it`);
    plan.push(`agent state → ${agentDir}`);
  }
  const workspaces = opts.only.has("workspaces") ? manifest.workspaces : [];
  for (const w of workspaces) {
    if (!APP_NAME.test(w.name)) throw new UsageError(`manifest names a workspace ${JSON.stringify(w.name)} that is not an app name`);
    const target = join(opts.workspaceRoot, w.name);
    if ((await nonEmpty(target)) && !opts.force) throw new UsageError(`${target} is not empty; pass --force to move it aside and restore over it`);
    plan.push(`workspace ${w.name} → ${target}${w.commitSha ? ` (commit ${w.commitSha.slice(0, 12)})` : ""}`);
  }
  for (const p of plan) say(`  ${p}`);
  if (opts.dryRun) return void say("dry run: nothing written");

  // --- the database: copy beside, fsync, rename over; stale WAL/SHM files never survive
  if (dbFile) {
    await mkdir(dirname(dbFile), { recursive: true });
    if (existsSync(dbFile)) await rename(dbFile, `${dbFile}.${aside}`);
    for (const suffix of ["-wal", "-shm", "-journal"]) await rm(`${dbFile}${suffix}`, { force: true });
    const tmp = `${dbFile}.restore-tmp`;
    await copyFile(inBackup(opts.backup, manifest.database.file), tmp);
    await fsyncPath(tmp);
    await rename(tmp, dbFile);
    await fsyncPath(dirname(dbFile));
    const c = createClient({ url: `file:${dbFile}` });
    try {
      const ok = String((await c.execute("PRAGMA integrity_check")).rows[0]?.[0]);
      if (ok !== "ok") throw new Error(`restored database fails its integrity check: ${ok}`);
    } finally {
      c.close();
    }
    say(`restored database ${dbFile}`);
  }
  if (dataTar) {
    await mkdir(opts.dataDir, { recursive: true, mode: 0o700 });
    await extract(dataTar, opts.dataDir);
    say(`restored data dir ${opts.dataDir}`);
  }
  if (agentTar) {
    await extract(agentTar, agentDir, opts.owner);
    say(`restored agent state ${agentDir}`);
  }
  for (const w of workspaces) {
    const target = join(opts.workspaceRoot, w.name);
    if (await nonEmpty(target)) await rename(target, `${target}.${aside}`);
    await rm(target, { recursive: true, force: true });
    await extract(inBackup(opts.backup, w.file), target, opts.owner);
    say(`restored workspace ${w.name} (${w.files} files, ${formatSize(w.bytes)})`);
  }
  // The local agent's state came back inside the data dir; it belongs to the agent's user too.
  if (dataTar && opts.owner && existsSync(join(opts.dataDir, "agent"))) {
    await run("chown", ["-R", "--no-dereference", opts.owner.includes(":") ? opts.owner : `${opts.owner}:`, "--", join(opts.dataDir, "agent")]);
  }

  const left = workspaces.flatMap((w) => w.excluded.map((x) => ({ app: w.name, ...x })));
  if (left.length) {
    say(`\nLeft out of the backup (fetch again before starting these apps):`);
    for (const x of left) say(`  ${x.app}: ${x.path} (${formatSize(x.bytes)}, ${x.reason})`);
  }
  const apps = manifest.apps ?? [];
  if (apps.length) {
    say(`\nApps recorded in the database:`);
    for (const a of apps) say(`  ${a.name}: ${a.repository} @ ${a.commitSha ?? "(no commit yet)"} on ${a.hostName ?? a.hostId ?? "(no host)"}`);
  }
  say(`\nNext: start the console (npm start) and the agents; they reconnect with their restored identities.`);
  say(`Then: node scripts/restore.mjs ${opts.backup} --start-apps [--console URL --token TOKEN]`);
}

main().catch((e) => {
  process.stderr.write(`restore: ${e instanceof UsageError ? e.message : e.stack ?? e}\n`);
  process.exit(e instanceof UsageError ? 2 : 1);
});
