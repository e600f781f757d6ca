// Shared by scripts/backup.mjs and scripts/restore.mjs: the console's default paths, sizes,
// exclusion patterns, checksums and the tar wrapper (argument arrays, never a shell).
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, existsSync, accessSync, constants } from "node:fs";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";

export const FORMAT = "dcc-backup/1";
/** A backup folder's name: dcc-<UTC time>, sortable as text. */
export const BACKUP_NAME = /^dcc-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/;
/** An app name (and so a workspace folder): a DNS label, as agent/src/contract/validation.ts says. */
export const APP_NAME = /^(?=.{1,63}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

export class UsageError extends Error {}

/** The console's own defaults (app/config.server.ts), so the scripts find what `npm start` uses. */
export function consolePaths(env, given = {}) {
  const dataDir = resolve(given.dataDir ?? env.DCC_DATA_DIR ?? "./data");
  const databaseUrl = given.databaseUrl ?? env.DATABASE_URL ?? `file:${join(dataDir, "dcc.db")}`;
  let workspaceRoot = given.workspaceRoot ?? env.DCC_WORKSPACE_ROOT;
  if (!workspaceRoot) workspaceRoot = writable("/opt/dockerstore") ? "/opt/dockerstore" : join(dataDir, "dockerstore");
  return { dataDir, databaseUrl, workspaceRoot: resolve(workspaceRoot) };
}

function writable(dir) {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** The file behind a `file:` URL, or null for a remote (Turso / sqld) database. */
export function databaseFile(url) {
  if (!url.startsWith("file:")) return null;
  const path = url.slice("file:".length).split("?")[0];
  if (!path || path === ":memory:") throw new UsageError(`DATABASE_URL ${url} names no file`);
  return resolve(path);
}

export const REMOTE_DATABASE_NOTE =
  "this script copies embedded libSQL files only. For Turso use Turso's own tooling " +
  "(point-in-time restore: `turso db create NEW --from-db DB --timestamp T`; or an export: " +
  "`turso db shell DB .dump > dcc.sql`); for a self-hosted sqld, back up its data directory. " +
  "Pass --no-database to back up the workspaces alone.";

/** "500M", "2G", "1048576" → bytes (K/M/G/T are powers of 1024). */
export function parseSize(text) {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?$/i.exec(String(text).trim());
  if (!m) throw new UsageError(`${JSON.stringify(text)} is not a size (e.g. 500M, 2G)`);
  const unit = (m[2] ?? "B")[0].toUpperCase();
  const mult = { B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[unit];
  return Math.floor(Number(m[1]) * mult);
}

export function formatSize(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/**
 * A path pattern relative to a workspace, gitignore-like: `*` stays inside one path segment, `**`
 * crosses them, `?` is one character; a pattern without `/` matches the name at any depth;
 * `dir/` or `dir/**` matches the folder and everything in it.
 */
export function globMatcher(pattern) {
  let p = pattern.trim();
  if (!p) throw new UsageError("an empty --exclude-paths pattern");
  if (p.startsWith("/")) p = p.slice(1);
  if (p.endsWith("/")) p += "**";
  const anyDepth = !p.includes("/");
  let re = "";
  for (let i = 0; i < p.length; i++) {
    const ch = p[i];
    if (ch === "*" && p[i + 1] === "*") {
      // "**/" matches zero or more folders; a trailing "**" matches everything below.
      if (p[i + 2] === "/") {
        re += "(?:.*/)?";
        i += 2;
      } else {
        re += ".*";
        i += 1;
      }
    } else if (ch === "*") re += "[^/]*";
    else if (ch === "?") re += "[^/]";
    else re += ch.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  const rx = new RegExp(`^${anyDepth ? "(?:.*/)?" : ""}${re}$`);
  // A folder is left out as a whole when the pattern matches it or everything below it.
  const dirRx = p.endsWith("/**") ? new RegExp(`^${anyDepth ? "(?:.*/)?" : ""}${re.slice(0, -"/.*".length)}$`) : null;
  return { pattern, matches: (rel, isDir) => rx.test(rel) || (isDir && dirRx !== null && dirRx.test(rel)) };
}

export async function sha256File(path) {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk);
  return h.digest("hex");
}

/** Runs a program with an argument array; resolves { code, stdout, stderr }, rejects when it cannot start. */
export function run(cmd, args, { input, cwd, okCodes = [0] } = {}) {
  return new Promise((ok, fail) => {
    const p = spawn(cmd, args, { cwd, stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    p.on("error", fail);
    p.on("close", (code) => {
      if (okCodes.includes(code)) ok({ code, stdout, stderr });
      else fail(Object.assign(new Error(`${cmd} ${args.slice(0, 4).join(" ")}… exited ${code}: ${stderr.trim().slice(0, 2000)}`), { code, stderr }));
    });
    if (input !== undefined) {
      p.stdin.on("error", () => {}); // a child that exits early reports through its exit code
      p.stdin.end(input);
    }
  });
}

export async function readManifest(dir) {
  const path = join(dir, "manifest.json");
  if (!existsSync(path)) throw new UsageError(`${dir} holds no manifest.json: not a backup`);
  const m = JSON.parse(await readFile(path, "utf8"));
  if (m.format !== FORMAT) throw new UsageError(`${path}: format ${JSON.stringify(m.format)} is not ${FORMAT}`);
  return m;
}

export async function consoleVersion() {
  try {
    return JSON.parse(await readFile(new URL("../../package.json", import.meta.url), "utf8")).version;
  } catch {
    return "unknown";
  }
}

export function stamp(date = new Date()) {
  return date.toISOString().replace(/[:.]/g, "-");
}
