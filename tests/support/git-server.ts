// Real smart-HTTP git server for tests: serves bare repos on 127.0.0.1 through `git http-backend` (CGI) and makes fixture commits.
import { execFile, spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, isAbsolute, join, normalize, sep } from "node:path";
import { promisify } from "node:util";
import { gunzipSync } from "node:zlib";

const execFileAsync = promisify(execFile);

/** One request the server answered, as a forge's access log would show it. */
export interface GitRequest {
  repo: string;
  method: string;
  /** `info/refs`, `git-upload-pack`, … (the path after the repository). */
  endpoint: string;
  /** Protocol v2 command of an upload-pack POST (`ls-refs`, `fetch`); null otherwise. */
  command: string | null;
  /** Bytes of the response body: for a `fetch`, about the packfile's size. */
  bytes: number;
  /** Objects in the packfile a `fetch` answered with (from its PACK header); 0 when none was sent. */
  objects: number;
}

export interface GitServer {
  /** Every request served so far, oldest first (tests clear it with `requests.length = 0`). */
  requests: GitRequest[];
  /** Bytes of packfile data (upload-pack `fetch` answers) served for `repo` since index `from` of `requests`. */
  fetchedBytes(repo: string, from?: number): number;
  /** Objects served in packfiles for `repo` since index `from` of `requests`. */
  fetchedObjects(repo: string, from?: number): number;
  /** Base URL, e.g. http://127.0.0.1:41234 ; a repo is at `${url}/${name}.git`. */
  url: string;
  /** GIT_PROJECT_ROOT: the folder holding the bare `<name>.git` repositories. */
  root: string;
  /** Create bare repo `<name>.git` with a first commit on `main` holding `files`. */
  createRepo(name: string, files: Record<string, string>): Promise<{ url: string; sha: string }>;
  /** Add or change files in a new commit on `main`, push it, and return its SHA. */
  commit(name: string, files: Record<string, string>, message?: string): Promise<string>;
  /** SHA of refs/heads/main in the bare repo. */
  headSha(name: string): Promise<string>;
  /** An annotated tag `tag` on the newest commit of `main` (or on `sha`), pushed; returns the commit. */
  tag(name: string, tag: string, sha?: string): Promise<string>;
  /** Adds a gitlink `path` → `sha` (of `url`) and a .gitmodules entry in a new commit on `main`. */
  addSubmodule(name: string, sub: { name: string; path: string; url: string; sha: string }): Promise<string>;
  /** Requests for `/redirect/<anything>` answer 301 to `${location}<anything>` (another host). */
  redirectTo(location: string | null): void;
  /** Stop serving and delete every repository. */
  close(): Promise<void>;
}

const REPO_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Environment for git commands we run ourselves: no system/global config, never prompt. */
function gitEnv(): NodeJS.ProcessEnv {
  return {
    NODE_ENV: process.env.NODE_ENV ?? "test", // required by Remix's ProcessEnv typing
    PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
    HOME: process.env.HOME ?? tmpdir(),
    LANG: "C",
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_CONFIG_GLOBAL: "/dev/null",
    GIT_TERMINAL_PROMPT: "0",
  };
}

async function git(args: string[], cwd?: string): Promise<string> {
  try {
    const { stdout } = await execFileAsync("git", args, { cwd, env: gitEnv(), maxBuffer: 16 * 1024 * 1024 });
    return stdout.trim();
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`git ${args.join(" ")} failed: ${e.stderr?.trim() || e.message}`);
  }
}

const AUTHOR = ["-c", "user.name=DCC Test", "-c", "user.email=dcc-test@example.invalid", "-c", "commit.gpgsign=false"];

async function writeFiles(dir: string, files: Record<string, string>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    const clean = normalize(rel);
    if (rel === "" || isAbsolute(rel) || clean === ".." || clean.startsWith(`..${sep}`) || clean.split(sep).includes(".git")) {
      throw new Error(`git-server: refusing file path ${JSON.stringify(rel)}`);
    }
    const target = join(dir, clean);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, content);
  }
}

/** Split a CGI reply into status, headers and the offset where the body starts. */
function parseCgiHead(buf: Buffer): { status: number; headers: Record<string, string | string[]>; bodyStart: number } | null {
  let end = buf.indexOf("\r\n\r\n");
  let sepLen = 4;
  const lf = buf.indexOf("\n\n");
  if (lf !== -1 && (end === -1 || lf < end)) {
    end = lf;
    sepLen = 2;
  }
  if (end === -1) return null;
  let status = 200;
  const headers: Record<string, string | string[]> = {};
  for (const line of buf.subarray(0, end).toString("latin1").split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (name.toLowerCase() === "status") {
      const code = Number.parseInt(value, 10);
      if (Number.isFinite(code)) status = code;
      continue;
    }
    const prev = headers[name];
    headers[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return { status, headers, bodyStart: end + sepLen };
}

function handle(root: string, req: IncomingMessage, res: ServerResponse, log: GitRequest[], redirect: string | null): void {
  const url = new URL(req.url ?? "/", "http://localhost");
  if (redirect !== null && url.pathname.startsWith("/redirect/")) {
    log.push({ repo: "", method: req.method ?? "GET", endpoint: url.pathname, command: "redirect", bytes: 0, objects: 0 });
    res.writeHead(301, { Location: `${redirect}${url.pathname.slice("/redirect/".length)}${url.search}` }).end();
    return;
  }
  let pathInfo: string;
  try {
    pathInfo = decodeURIComponent(url.pathname);
  } catch {
    res.writeHead(400).end("bad path\n");
    return;
  }
  const h = req.headers;
  const env: NodeJS.ProcessEnv = {
    ...gitEnv(),
    GIT_PROJECT_ROOT: root,
    GIT_HTTP_EXPORT_ALL: "1",
    GATEWAY_INTERFACE: "CGI/1.1",
    SERVER_PROTOCOL: `HTTP/${req.httpVersion}`,
    REQUEST_METHOD: req.method ?? "GET",
    PATH_INFO: pathInfo,
    QUERY_STRING: url.search.replace(/^\?/, ""),
    REMOTE_ADDR: req.socket.remoteAddress ?? "127.0.0.1",
  };
  if (h["content-type"]) env.CONTENT_TYPE = h["content-type"];
  if (h["content-length"]) env.CONTENT_LENGTH = h["content-length"];
  // http-backend inflates gzip bodies itself when told the encoding.
  if (h["content-encoding"]) env.HTTP_CONTENT_ENCODING = h["content-encoding"];
  // Protocol v2 negotiation travels in the Git-Protocol header.
  if (typeof h["git-protocol"] === "string") env.HTTP_GIT_PROTOCOL = h["git-protocol"];

  const match = /^\/([^/]+)\.git\/(.*)$/.exec(pathInfo);
  const entry: GitRequest = { repo: match?.[1] ?? "", method: req.method ?? "GET", endpoint: match?.[2] ?? pathInfo, command: null, bytes: 0, objects: 0 };
  let scan: Buffer | null = Buffer.alloc(0);
  log.push(entry);
  const body: Buffer[] = [];
  req.on("data", (chunk: Buffer) => body.length < 64 && body.push(chunk));
  req.on("end", () => {
    let text = Buffer.concat(body);
    try {
      if (/gzip/.test(String(h["content-encoding"] ?? ""))) text = gunzipSync(text);
    } catch {
      // a body we cannot read: the command stays unknown
    }
    entry.command = /command=([a-z-]+)/.exec(text.toString("latin1"))?.[1] ?? null;
  });

  const child = spawn("git", ["http-backend"], { env, stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d: string) => (stderr += d));
  child.stdin.on("error", () => {}); // backend may exit before reading the whole body
  req.pipe(child.stdin);

  let head: Buffer | null = Buffer.alloc(0);
  child.stdout.on("data", (chunk: Buffer) => {
    entry.bytes += chunk.length;
    if (scan !== null) {
      // The packfile's 12-byte header ("PACK", version, object count) sits whole in its first sideband packet.
      scan = Buffer.concat([scan, chunk]);
      const at = scan.indexOf("PACK\0\0\0");
      if (at !== -1 && scan.length >= at + 12) {
        entry.objects = scan.readUInt32BE(at + 8);
        scan = null;
      } else if (scan.length > 1 << 20) scan = null;
    }
    if (head === null) {
      res.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const parsed = parseCgiHead(head);
    if (!parsed) return;
    res.writeHead(parsed.status, parsed.headers);
    const rest = head.subarray(parsed.bodyStart);
    head = null;
    if (rest.length) res.write(rest);
  });
  child.on("error", (err) => {
    if (!res.headersSent) res.writeHead(500, { "Content-Type": "text/plain" });
    res.end(`git http-backend failed: ${err.message}\n`);
  });
  child.on("close", (code) => {
    if (head !== null && !res.headersSent) {
      res.writeHead(code === 0 ? 502 : 500, { "Content-Type": "text/plain" });
      res.end(`git http-backend gave no CGI reply (exit ${code}): ${stderr.trim()}\n`);
      return;
    }
    res.end();
  });
  req.on("aborted", () => child.kill("SIGKILL"));
}

export interface GitServerOptions {
  /** Require HTTP Basic auth with these credentials on every request (401 otherwise), as a private forge does. */
  basicAuth?: { username: string; password: string };
}

/** Whether the request carries the expected Basic credentials. */
function authorized(req: IncomingMessage, auth: { username: string; password: string }): boolean {
  const m = /^Basic ([A-Za-z0-9+/=]+)$/.exec(req.headers.authorization ?? "");
  return m !== null && Buffer.from(m[1]!, "base64").toString("utf8") === `${auth.username}:${auth.password}`;
}

/** Start a smart-HTTP git server on 127.0.0.1 with a random free port and an empty temp project root. */
export async function startGitServer(opts: GitServerOptions = {}): Promise<GitServer> {
  const base = await mkdtemp(join(tmpdir(), "dcc-git-"));
  const root = join(base, "repos");
  const work = join(base, "work");
  await mkdir(root);
  await mkdir(work);

  const requests: GitRequest[] = [];
  let redirect: string | null = null;
  const server: Server = createServer((req, res) => {
    if (opts.basicAuth && !authorized(req, opts.basicAuth)) {
      res.writeHead(401, { "WWW-Authenticate": 'Basic realm="git"', "Content-Type": "text/plain" }).end("authentication required\n");
      return;
    }
    handle(root, req, res, requests, redirect);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;

  const check = (name: string): void => {
    if (!REPO_NAME.test(name) || name.endsWith(".git")) throw new Error(`git-server: bad repo name ${JSON.stringify(name)}`);
  };
  const barePath = (name: string) => join(root, `${name}.git`);
  const workPath = (name: string) => join(work, name);

  async function commitAndPush(name: string, files: Record<string, string>, message: string): Promise<string> {
    const dir = workPath(name);
    await writeFiles(dir, files);
    await git(["add", "-A"], dir);
    await git([...AUTHOR, "commit", "-q", "--allow-empty", "-m", message], dir);
    await git(["push", "-q", barePath(name), "HEAD:refs/heads/main"], dir);
    return git(["rev-parse", "HEAD"], dir);
  }

  return {
    url,
    root,
    requests,
    fetchedObjects(repo, from = 0) {
      return requests.slice(from).filter((r) => r.repo === repo && r.command === "fetch").reduce((sum, r) => sum + r.objects, 0);
    },
    fetchedBytes(repo, from = 0) {
      return requests.slice(from).filter((r) => r.repo === repo && r.command === "fetch").reduce((sum, r) => sum + r.bytes, 0);
    },
    async createRepo(name, files) {
      check(name);
      const bare = barePath(name);
      await git(["init", "-q", "--bare", "--initial-branch=main", bare]);
      await git(["--git-dir", bare, "symbolic-ref", "HEAD", "refs/heads/main"]);
      // Fetching one commit by its id (a rollback to a commit the host no longer has), as forges allow.
      await git(["--git-dir", bare, "config", "uploadpack.allowAnySHA1InWant", "true"]);
      await git(["init", "-q", "--initial-branch=main", workPath(name)]);
      const sha = await commitAndPush(name, files, "Initial commit");
      return { url: `${url}/${name}.git`, sha };
    },
    async commit(name, files, message = "Update fixtures") {
      check(name);
      return commitAndPush(name, files, message);
    },
    async headSha(name) {
      check(name);
      return git(["--git-dir", barePath(name), "rev-parse", "refs/heads/main"]);
    },
    async tag(name, tag, sha) {
      check(name);
      const dir = workPath(name);
      await git([...AUTHOR, "tag", "-a", "-m", tag, "--", tag, sha ?? "HEAD"], dir);
      await git(["push", "-q", barePath(name), `refs/tags/${tag}`], dir);
      return git(["rev-parse", `${tag}^{commit}`], dir);
    },
    async addSubmodule(name, sub) {
      check(name);
      const dir = workPath(name);
      await mkdir(join(dir, sub.path), { recursive: true }); // an unpopulated submodule: later `add -A` keeps the gitlink
      await git(["update-index", "--add", "--cacheinfo", `160000,${sub.sha},${sub.path}`], dir);
      await git(["config", "--file", ".gitmodules", `submodule.${sub.name}.path`, sub.path], dir);
      await git(["config", "--file", ".gitmodules", `submodule.${sub.name}.url`, sub.url], dir);
      await git(["add", ".gitmodules"], dir);
      await git([...AUTHOR, "commit", "-q", "-m", `submodule ${sub.name}`], dir);
      await git(["push", "-q", barePath(name), "HEAD:refs/heads/main"], dir);
      return git(["rev-parse", "HEAD"], dir);
    },
    redirectTo(location) {
      redirect = location;
    },
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await rm(base, { recursive: true, force: true });
    },
  };
}
