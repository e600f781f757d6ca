#!/usr/bin/env node
// Online backup of a Docker Control Center installation: the libSQL database (VACUUM INTO, a
// consistent snapshot even while the console writes), the console's data dir (keys, session
// secret, the local agent's state), an agent's state dir, and every workspace under the workspace
// root as a tar with its repository and commit. Writes dcc-<UTC time>/ with manifest.json
// (versions, time, files, checksums, what was left out) and can prune old backups.
import { createClient } from "@libsql/client";
import { lstat, mkdir, readdir, readFile, rename, rm, stat, chmod, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { hostname } from "node:os";
import { join, relative, resolve, sep } from "node:path";
import { parseArgs } from "node:util";
import {
  APP_NAME,
  BACKUP_NAME,
  FORMAT,
  REMOTE_DATABASE_NOTE,
  UsageError,
  consolePaths,
  consoleVersion,
  databaseFile,
  formatSize,
  globMatcher,
  parseSize,
  run,
  sha256File,
  stamp,
} from "./lib/backup-common.mjs";

const USAGE = `Usage: node scripts/backup.mjs --out DIR [options]

Writes DIR/dcc-<UTC time>/ while the console keeps running:
  database/dcc.db          the libSQL database (VACUUM INTO: a consistent snapshot under WAL)
  data/console-data.tar    the console's data dir without the database: signing key, session
                           secret, the local agent's state (keys, enrolment, git dirs, compose files)
  agent/agent-state.tar    an agent's state dir (--agent-state-dir), e.g. on a GPU box
  workspaces/<app>.tar     each workspace under the workspace root
  manifest.json            versions, time, apps with repository and commit SHA, files with
                           SHA-256 checksums, and every file left out

Options:
  --out DIR                where backups go (DCC_BACKUP_DIR)
  --database-url URL       the console's database (DATABASE_URL; default file:$DCC_DATA_DIR/dcc.db).
                           Only file: URLs: for Turso/sqld see the note below
  --data-dir DIR           the console's data dir (DCC_DATA_DIR; default ./data)
  --workspace-root DIR     app workspaces (DCC_WORKSPACE_ROOT; default as the console picks it)
  --agent-state-dir DIR    also save this agent state dir (DCC_AGENT_STATE_DIR)
  --no-database            leave the database out (a GPU box without it)
  --no-data-dir            leave the console's data dir out
  --no-workspaces          leave the workspaces out
  --exclude-large SIZE     leave out workspace files larger than SIZE (e.g. 500M, 2G)
  --exclude-paths GLOBS    comma-separated patterns inside a workspace to leave out
                           (e.g. 'models/**,*.safetensors,*.ckpt'); may be given more than once
  --gzip                   compress the tars (.tar.gz)
  --with-secret-key        also save the console's secret key (secret.key), which opens the app
                           secrets, git credentials and registry passwords sealed in the database.
                           Left out by default: keep it (or DCC_SECRET_KEY) apart from the backups
  --keep N                 after a successful backup keep only the N newest in --out
  --quiet                  print only the backup's path
  --help                   this text

Files left out are listed in manifest.json (path, size, why) and by restore.mjs, so they can be
fetched again (model downloads) after a restore. The backup holds private keys: keep --out
readable by root only (backups are written 0700).

Turso / sqld: ${REMOTE_DATABASE_NOTE}

Scheduled backups (daily at 03:15, keeping 14):
  cron:    15 3 * * *  cd /srv/dcc && node scripts/backup.mjs --out /var/backups/dcc --keep 14 --quiet
  systemd: see README.md, "Backup and restore" (dcc-backup.service + dcc-backup.timer)
`;

function parse(argv, env) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      out: { type: "string" },
      "database-url": { type: "string" },
      "data-dir": { type: "string" },
      "workspace-root": { type: "string" },
      "agent-state-dir": { type: "string" },
      "no-database": { type: "boolean" },
      "no-data-dir": { type: "boolean" },
      "no-workspaces": { type: "boolean" },
      "exclude-large": { type: "string" },
      "with-secret-key": { type: "boolean" },
      "exclude-paths": { type: "string", multiple: true },
      gzip: { type: "boolean" },
      keep: { type: "string" },
      quiet: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return { help: true };
  const out = values.out ?? env.DCC_BACKUP_DIR;
  if (!out) throw new UsageError("--out DIR is required");
  const paths = consolePaths(env, { dataDir: values["data-dir"], databaseUrl: values["database-url"], workspaceRoot: values["workspace-root"] });
  let keep;
  if (values.keep !== undefined) {
    if (!/^[1-9]\d{0,5}$/.test(values.keep)) throw new UsageError("--keep must be a whole number ≥ 1");
    keep = Number(values.keep);
  }
  const agentStateDir = values["agent-state-dir"] ?? env.DCC_AGENT_STATE_DIR;
  return {
    out: resolve(out),
    ...paths,
    agentStateDir: agentStateDir ? resolve(agentStateDir) : undefined,
    database: !values["no-database"],
    dataDirPart: !values["no-data-dir"],
    workspaces: !values["no-workspaces"],
    withSecretKey: values["with-secret-key"] === true,
    excludeLarge: values["exclude-large"] !== undefined ? parseSize(values["exclude-large"]) : undefined,
    excludeLargeText: values["exclude-large"],
    excludePaths: (values["exclude-paths"] ?? []).flatMap((s) => s.split(",")).filter((s) => s.trim()).map(globMatcher),
    gzip: Boolean(values.gzip),
    keep,
    quiet: Boolean(values.quiet),
  };
}

const isInside = (parent, child) => {
  const rel = relative(parent, child);
  return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== "..");
};

/** Consistent copy of the database through SQLite's VACUUM INTO, checked and summarised. */
async function backupDatabase(opts, dest) {
  const file = databaseFile(opts.databaseUrl);
  if (file === null) throw new UsageError(`${opts.databaseUrl} is not a file: database; ${REMOTE_DATABASE_NOTE}`);
  if (!existsSync(file)) throw new UsageError(`database file ${file} does not exist`);
  const src = createClient({ url: `file:${file}`, timeout: 15_000 });
  try {
    await src.execute({ sql: "VACUUM INTO ?", args: [dest] });
  } finally {
    src.close();
  }
  const copy = createClient({ url: `file:${dest}` });
  try {
    const integrity = String((await copy.execute("PRAGMA integrity_check")).rows[0]?.[0]);
    if (integrity !== "ok") throw new Error(`the database copy fails its integrity check: ${integrity}`);
    const version = String((await copy.execute("SELECT sqlite_version()")).rows[0]?.[0]);
    const tables = (await copy.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")).rows.map((r) => String(r.name));
    const counts = {};
    for (const t of tables) counts[t] = Number((await copy.execute(`SELECT count(*) AS n FROM "${t.replace(/"/g, '""')}"`)).rows[0].n);
    let migrations = null;
    if (tables.includes("__drizzle_migrations")) {
      const r = await copy.execute("SELECT count(*) AS n, max(created_at) AS last FROM __drizzle_migrations");
      migrations = { applied: Number(r.rows[0].n), lastCreatedAt: r.rows[0].last === null ? null : Number(r.rows[0].last) };
    }
    let apps = [];
    if (tables.includes("apps")) {
      const hosts = tables.includes("hosts") ? "LEFT JOIN hosts h ON h.id = a.host_id" : "";
      const rows = await copy.execute(
        `SELECT a.name, a.repository, a.commit_sha, a.host_id, ${hosts ? "h.name AS host_name" : "NULL AS host_name"}, a.status, a.port FROM apps a ${hosts} ORDER BY a.name`,
      );
      apps = rows.rows.map((r) => ({
        name: String(r.name),
        repository: String(r.repository),
        commitSha: r.commit_sha === null ? null : String(r.commit_sha),
        hostId: r.host_id === null ? null : String(r.host_id),
        hostName: r.host_name === null ? null : String(r.host_name),
        status: String(r.status),
        port: Number(r.port),
      }));
    }
    return { source: `file:${file}`, sqliteVersion: version, integrity, migrations, tables: counts, apps };
  } finally {
    copy.close();
  }
}

/**
 * The workspace's files as tar will get them (folders listed explicitly, nothing followed through
 * a symlink), and what the exclusion options leave out.
 */
async function walk(root, opts) {
  const include = ["."];
  const excluded = [];
  const skipped = [];
  let bytes = 0;
  let files = 0;
  const sizeOf = async (dir) => {
    let total = 0;
    let count = 0;
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) {
        const s = await sizeOf(p);
        total += s.total;
        count += s.count;
      } else if (e.isFile()) {
        total += (await lstat(p)).size;
        count++;
      }
    }
    return { total, count };
  };
  const visit = async (dir) => {
    const entries = (await readdir(join(root, dir), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      const rel = dir === "." ? e.name : `${dir}/${e.name}`;
      const abs = join(root, rel);
      const isDir = e.isDirectory();
      const rule = opts.excludePaths.find((g) => g.matches(rel, isDir));
      if (rule) {
        if (isDir) {
          const s = await sizeOf(abs);
          excluded.push({ path: `${rel}/`, bytes: s.total, files: s.count, reason: `matches ${rule.pattern}` });
        } else {
          excluded.push({ path: rel, bytes: (await lstat(abs)).size, reason: `matches ${rule.pattern}` });
        }
        continue;
      }
      if (isDir) {
        include.push(`./${rel}`);
        await visit(rel);
      } else if (e.isFile()) {
        const size = (await lstat(abs)).size;
        if (opts.excludeLarge !== undefined && size > opts.excludeLarge) {
          excluded.push({ path: rel, bytes: size, reason: `larger than ${opts.excludeLargeText}` });
          continue;
        }
        include.push(`./${rel}`);
        bytes += size;
        files++;
      } else if (e.isSymbolicLink()) {
        include.push(`./${rel}`); // the link itself, never its target
      } else {
        skipped.push({ path: rel, reason: "not a file, folder or symbolic link" });
      }
    }
  };
  await visit(".");
  return { include, excluded, skipped, bytes, files };
}

async function tarList(dir, list, dest, gzip) {
  // GNU tar exits 1 when a file changed while it was read: the archive is written, the file may be torn.
  const r = await run(
    "tar",
    ["--create", `--file=${dest}`, `--directory=${dir}`, "--numeric-owner", "--no-recursion", "--null", "--files-from=-", ...(gzip ? ["--gzip"] : [])],
    { input: list.join("\0") + "\0", okCodes: [0, 1] },
  );
  return r.code === 1 ? [r.stderr.trim()] : [];
}

/** An agent's plaintext secret files (one folder per app), never saved. */
const AGENT_SECRET_FILES = ["*compose/*/secrets"];

/** A whole folder as one tar, minus the paths given (relative, e.g. "dcc.db"). */
async function tarDir(dir, dest, gzip, excludeRel = []) {
  const args = ["--create", `--file=${dest}`, `--directory=${dir}`, "--numeric-owner", "--anchored", ...excludeRel.map((p) => `--exclude=./${p}`), ...(gzip ? ["--gzip"] : []), "."];
  const r = await run("tar", args, { okCodes: [0, 1] });
  return r.code === 1 ? [r.stderr.trim()] : [];
}

/** Repository and commit as the agent's git dir (outside the workspace) records them. */
async function gitFacts(agentStateDir, name) {
  if (!agentStateDir) return {};
  const gitDir = join(agentStateDir, "git", `${name}.git`);
  if (!existsSync(gitDir)) return {};
  const git = async (...args) => {
    try {
      return (await run("git", [`--git-dir=${gitDir}`, ...args])).stdout.trim() || null;
    } catch {
      return null;
    }
  };
  return { gitCommit: await git("rev-parse", "--verify", "HEAD"), gitRepository: await git("config", "--get", "remote.origin.url") };
}

async function prune(out, keep, current) {
  const removed = [];
  const names = (await readdir(out)).filter((n) => BACKUP_NAME.test(n)).sort();
  const complete = [];
  for (const n of names) {
    try {
      const m = JSON.parse(await readFile(join(out, n, "manifest.json"), "utf8"));
      if (m.format === FORMAT) complete.push(n);
    } catch {
      // not a finished backup of ours: never touched
    }
  }
  for (const n of complete.slice(0, Math.max(0, complete.length - keep))) {
    if (n === current) continue;
    await rm(join(out, n), { recursive: true, force: true });
    removed.push(n);
  }
  // Leftovers of runs that died half-way, a day old or more.
  for (const n of await readdir(out)) {
    if (!/^\.dcc-.*\.partial$/.test(n)) continue;
    const s = await stat(join(out, n));
    if (Date.now() - s.mtimeMs > 24 * 3600 * 1000) {
      await rm(join(out, n), { recursive: true, force: true });
      removed.push(n);
    }
  }
  return removed;
}

async function main() {
  let opts;
  try {
    opts = parse(process.argv.slice(2), process.env);
  } catch (e) {
    process.stderr.write(`backup: ${e.message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (opts.help) return void process.stdout.write(USAGE);
  const say = (msg) => opts.quiet || process.stdout.write(`${msg}\n`);

  const startedAt = new Date();
  const name = `dcc-${stamp(startedAt)}`;
  await mkdir(opts.out, { recursive: true, mode: 0o700 });
  const final = join(opts.out, name);
  const work = join(opts.out, `.${name}.partial`);
  if (existsSync(final)) throw new UsageError(`${final} already exists`);
  await mkdir(work, { mode: 0o700 });
  await chmod(work, 0o700);
  const ext = opts.gzip ? ".tar.gz" : ".tar";
  const manifest = {
    format: FORMAT,
    createdAt: startedAt.toISOString(),
    finishedAt: null,
    host: hostname(),
    versions: { console: await consoleVersion(), node: process.version, tar: (await run("tar", ["--version"])).stdout.split("\n")[0] },
    options: { excludeLarge: opts.excludeLargeText ?? null, excludePaths: opts.excludePaths.map((g) => g.pattern), gzip: opts.gzip },
    database: null,
    dataDir: null,
    agentStateDir: null,
    workspaceRoot: null,
    apps: [],
    workspaces: [],
    files: [],
    warnings: [],
  };

  try {
    const dbFile = opts.database ? databaseFile(opts.databaseUrl) : null;
    if (opts.database) {
      if (dbFile === null) throw new UsageError(`${opts.databaseUrl} is a remote database; ${REMOTE_DATABASE_NOTE}`);
      await mkdir(join(work, "database"));
      const db = await backupDatabase(opts, join(work, "database", "dcc.db"));
      manifest.apps = db.apps;
      delete db.apps;
      manifest.database = { ...db, file: "database/dcc.db" };
      say(`database: ${db.source} (${manifest.apps.length} apps, integrity ok)`);
    }

    if (opts.dataDirPart && existsSync(opts.dataDir)) {
      // The database travels as its consistent copy; workspaces travel one by one.
      const leaveOut = [];
      if (dbFile && isInside(opts.dataDir, dbFile)) {
        const rel = relative(opts.dataDir, dbFile);
        leaveOut.push(rel, `${rel}-wal`, `${rel}-shm`, `${rel}-journal`);
      }
      if (isInside(opts.dataDir, opts.workspaceRoot) && opts.workspaceRoot !== opts.dataDir) leaveOut.push(relative(opts.dataDir, opts.workspaceRoot));
      // Secrets stay out of backups: the key that opens the sealed values in the database (unless
      // asked for), and the plaintext secret files a local agent keeps for its containers (the
      // console sends them again with the next deploy, update or reinstall).
      if (!opts.withSecretKey) leaveOut.push("secret.key");
      leaveOut.push(...AGENT_SECRET_FILES);
      if (opts.agentStateDir && isInside(opts.dataDir, opts.agentStateDir)) {
        // saved with the data dir already
        opts.agentStateDir = undefined;
      }
      await mkdir(join(work, "data"));
      const warnings = await tarDir(opts.dataDir, join(work, "data", `console-data${ext}`), opts.gzip, leaveOut);
      manifest.dataDir = { path: opts.dataDir, file: `data/console-data${ext}`, leftOut: leaveOut };
      manifest.warnings.push(...warnings);
      say(`data dir: ${opts.dataDir}`);
    }

    if (opts.agentStateDir) {
      if (!existsSync(opts.agentStateDir)) throw new UsageError(`agent state dir ${opts.agentStateDir} does not exist`);
      await mkdir(join(work, "agent"));
      const warnings = await tarDir(opts.agentStateDir, join(work, "agent", `agent-state${ext}`), opts.gzip, AGENT_SECRET_FILES);
      manifest.agentStateDir = { path: opts.agentStateDir, file: `agent/agent-state${ext}` };
      manifest.warnings.push(...warnings);
      say(`agent state: ${opts.agentStateDir}`);
    }

    if (opts.workspaces) {
      manifest.workspaceRoot = opts.workspaceRoot;
      if (!existsSync(opts.workspaceRoot)) {
        manifest.warnings.push(`workspace root ${opts.workspaceRoot} does not exist: no workspaces saved`);
      } else {
        await mkdir(join(work, "workspaces"));
        const byName = new Map(manifest.apps.map((a) => [a.name, a]));
        // The agent's git dirs: given explicitly, or the local agent's under the data dir.
        const agentState = opts.agentStateDir ?? manifest.agentStateDir?.path ?? (existsSync(join(opts.dataDir, "agent")) ? join(opts.dataDir, "agent") : undefined);
        for (const entry of (await readdir(opts.workspaceRoot, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
          if (!entry.isDirectory()) continue;
          if (!APP_NAME.test(entry.name)) {
            manifest.warnings.push(`${join(opts.workspaceRoot, entry.name)}: not an app name, not saved`);
            continue;
          }
          const dir = join(opts.workspaceRoot, entry.name);
          const w = await walk(dir, opts);
          const file = `workspaces/${entry.name}${ext}`;
          const warnings = await tarList(dir, w.include, join(work, file), opts.gzip);
          const app = byName.get(entry.name);
          const git = await gitFacts(agentState, entry.name);
          manifest.workspaces.push({
            name: entry.name,
            app: opts.database ? Boolean(app) : null,
            repository: git.gitRepository ?? app?.repository ?? null,
            commitSha: git.gitCommit ?? app?.commitSha ?? null,
            file,
            bytes: w.bytes,
            files: w.files,
            excluded: w.excluded,
            skipped: w.skipped,
            warnings,
          });
          const left = w.excluded.reduce((a, x) => a + x.bytes, 0);
          say(`workspace ${entry.name}: ${w.files} files, ${formatSize(w.bytes)}${w.excluded.length ? `; left out ${w.excluded.length} (${formatSize(left)})` : ""}`);
        }
      }
    }

    // Checksums of everything written, then the manifest, then the folder gets its final name.
    const walkOut = async (dir) => {
      for (const e of (await readdir(join(work, dir), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
        const rel = dir ? `${dir}/${e.name}` : e.name;
        if (e.isDirectory()) await walkOut(rel);
        else manifest.files.push({ path: rel, bytes: (await stat(join(work, rel))).size, sha256: await sha256File(join(work, rel)) });
      }
    };
    await walkOut("");
    manifest.finishedAt = new Date().toISOString();
    await writeFile(join(work, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n", { mode: 0o600 });
    await rename(work, final);
  } catch (e) {
    await rm(work, { recursive: true, force: true });
    throw e;
  }

  for (const w of manifest.warnings) process.stderr.write(`backup: warning: ${w}\n`);
  if (opts.keep) {
    const removed = await prune(opts.out, opts.keep, name);
    if (removed.length) say(`retention (--keep ${opts.keep}): removed ${removed.join(", ")}`);
  }
  say(`backup written: ${final}`);
  if (opts.quiet) process.stdout.write(`${final}\n`);
}

main().catch((e) => {
  process.stderr.write(`backup: ${e instanceof UsageError ? e.message : e.stack ?? e}\n`);
  process.exit(e instanceof UsageError ? 2 : 1);
});
