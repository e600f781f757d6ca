// A generated repository shaped like the seeded templates' (AI web UIs: thousands of source files,
// a few large assets, hundreds of commits), written straight into a bare repository with
// `git fast-import` — generated, not downloaded, and the same bytes every time (seeded PRNG).
//
// Default shape: 3,000 files at the tip (python/js/json/markdown text that compresses like code,
// plus a few incompressible binary assets), about 30 MB of blobs across the history, 300 commits.
import { spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** mulberry32: small, fast, seeded. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = "import torch model tensor pipeline config scheduler latent sampler vae unet clip token prompt image batch device cuda float16 weight layer attention module forward return self def class if else for in range len dict list str int none true false yield async await gradio block button slider output input path load save checkpoint lora embed noise step seed width height".split(" ");

function textFile(rand, bytes, ext) {
  const lines = [];
  let size = 0;
  while (size < bytes) {
    const indent = "    ".repeat(Math.floor(rand() * 3));
    const n = 3 + Math.floor(rand() * 9);
    let line = indent;
    for (let i = 0; i < n; i++) line += (i ? " " : "") + WORDS[Math.floor(rand() * WORDS.length)] + (rand() < 0.15 ? `_${Math.floor(rand() * 1000)}` : "");
    if (ext === "py" && rand() < 0.1) line = `${indent}def fn_${Math.floor(rand() * 1e6)}(self, x):`;
    lines.push(line);
    size += line.length + 1;
  }
  return Buffer.from(lines.join("\n") + "\n");
}

function binaryFile(rand, bytes) {
  const b = Buffer.allocUnsafe(bytes);
  for (let i = 0; i < bytes; i += 4) b.writeUInt32LE((rand() * 4294967296) >>> 0, i);
  return b;
}

/**
 * Writes the repository into `bareDir` (created by git fast-import's `git init --bare` here) on
 * branch main. Answers { files, blobBytes, commits, sha }.
 */
export async function generateLargeRepo(bareDir, { files = 3000, commits = 300, seed = 17, binaryAssets = 4, binaryBytes = 1_500_000, textBytes = 7_000 } = {}) {
  await run("git", ["init", "-q", "--bare", "--initial-branch=main", bareDir]);
  const work = await mkdtemp(join(tmpdir(), "dcc-large-"));
  const streamPath = join(work, "stream");
  const out = createWriteStream(streamPath);
  const write = (chunk) => new Promise((resolve) => (out.write(chunk) ? resolve() : out.once("drain", resolve)));
  const rand = prng(seed);
  const dirs = ["modules", "modules/processing", "modules/ui", "extensions-builtin/lora", "extensions-builtin/ldsr", "scripts", "javascript", "configs", "html", "test", "repositories/k-diffusion", "models/VAE-approx"];
  const exts = ["py", "py", "py", "js", "json", "md", "yaml", "css"];
  const paths = [];
  let blobBytes = 0;
  let mark = 0;
  const blob = async (data) => {
    mark++;
    blobBytes += data.length;
    await write(`blob\nmark :${mark}\ndata ${data.length}\n`);
    await write(data);
    await write("\n");
    return mark;
  };
  const initial = Math.max(1, files - (commits - 1));
  const tree = new Map();
  for (let i = 0; i < initial; i++) {
    const dir = dirs[Math.floor(rand() * dirs.length)];
    const ext = exts[Math.floor(rand() * exts.length)];
    const path = `${dir}/file_${i}.${ext}`;
    paths.push(path);
    tree.set(path, await blob(textFile(rand, Math.floor(textBytes * (0.3 + rand() * 1.4)), ext)));
  }
  for (let i = 0; i < binaryAssets; i++) {
    const path = `html/asset_${i}.bin`;
    paths.push(path);
    tree.set(path, await blob(binaryFile(rand, binaryBytes)));
  }
  tree.set("index.html", await blob(Buffer.from("<h1>large repository</h1>\n")));
  let time = 1_700_000_000;
  let lastCommit = 0;
  const commit = async (n, entries) => {
    mark++;
    const message = `change ${n}`;
    await write(`commit refs/heads/main\nmark :${mark}\ncommitter DCC Bench <bench@example.invalid> ${time} +0000\ndata ${message.length}\n${message}\n`);
    if (lastCommit) await write(`from :${lastCommit}\n`);
    for (const [path, m] of entries) await write(`M 100644 :${m} ${path}\n`);
    await write("\n");
    time += 3600;
    lastCommit = mark;
  };
  await commit(0, [...tree.entries()]);
  for (let n = 1; n < commits; n++) {
    const entries = [];
    for (let k = 0; k < 3; k++) {
      const path = paths[Math.floor(rand() * paths.length)];
      if (path.endsWith(".bin")) continue;
      entries.push([path, await blob(textFile(rand, Math.floor(textBytes * (0.3 + rand() * 1.4)), "py"))]);
    }
    const path = `modules/new_${n}.py`;
    paths.push(path);
    entries.push([path, await blob(textFile(rand, 2000, "py"))]);
    await commit(n, entries);
  }
  await new Promise((resolve) => out.end(resolve));
  await run("git", ["--git-dir", bareDir, "fast-import", "--quiet"], streamPath);
  await run("git", ["--git-dir", bareDir, "symbolic-ref", "HEAD", "refs/heads/main"]);
  // Packed as a forge would serve it.
  await run("git", ["--git-dir", bareDir, "repack", "-a", "-d", "-q"]);
  const sha = (await run("git", ["--git-dir", bareDir, "rev-parse", "refs/heads/main"])).trim();
  await rm(work, { recursive: true, force: true });
  return { files: paths.length + 1, blobBytes, commits, sha };
}

function run(cmd, args, stdinPath) {
  return new Promise((resolve, reject) => {
    const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: tmpdir(), GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null" };
    const child = spawn(cmd, args, { env, stdio: [stdinPath ? "pipe" : "ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    if (stdinPath) import("node:fs").then(({ createReadStream }) => createReadStream(stdinPath).pipe(child.stdin));
    child.on("close", (code) => (code === 0 ? resolve(stdout) : reject(new Error(`${cmd} ${args.join(" ")} exited ${code}: ${stderr}`))));
  });
}
