// The host's shared model store: `<workspace root>/.models` (or DCC_MODELS_DIR), bind-mounted at
// /models in apps that ask for it. The agent creates the store and its usual top-level folders,
// writes an app's model-path config file only where none exists (or where the file is its own),
// and measures the store for the hosts page. It never moves, links over or deletes a user's
// files: deinstall and clean reinstall work on `<root>/<name>` only, and `.models` is no app name.
import { chown, lstat, mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ModelStore } from "../contract/facts";
import { MODEL_FOLDERS, MODELS_MOUNT, type ModelStoreUse } from "../contract/models";
import { measureTree } from "./cleanup";

/** First line of every file the agent writes into a workspace: a file without it is the user's. */
export const AGENT_MARKER = "# Written by the dcc agent";

/** Creates the store and its usual folders (missing ones only), owned by the containers' user. */
export async function ensureModelStore(dir: string, uid: number, gid: number): Promise<void> {
  for (const d of [dir, ...MODEL_FOLDERS.map((f) => join(dir, f))]) {
    const existed = await lstat(d).then(() => true, () => false);
    if (existed) continue;
    await mkdir(d, { recursive: true, mode: 0o775 });
    // Apps run as the containers' user and download into the store.
    await chown(d, uid, gid).catch(() => {});
  }
}

/** ComfyUI reads extra model folders from `extra_model_paths.yaml` in its own directory. */
export function comfyExtraModelPaths(): string {
  const m = MODELS_MOUNT;
  return [
    `${AGENT_MARKER}: ComfyUI finds the host's shared model store (${m}) through it.`,
    "# Remove this file (or this first line) to manage the file yourself; the agent then leaves it alone.",
    "dcc_shared_models:",
    `  base_path: ${m}`,
    "  checkpoints: Stable-diffusion",
    "  loras: Lora",
    "  vae: VAE",
    "  embeddings: embeddings",
    "  controlnet: ControlNet",
    "  upscale_models: upscale_models",
    "  clip: clip",
    "  unet: unet",
    "",
  ].join("\n");
}

const CONFIG_FILES: Record<NonNullable<ModelStoreUse["config"]>, { path: string; text: () => string }> = {
  comfyui: { path: "extra_model_paths.yaml", text: comfyExtraModelPaths },
};

/**
 * Writes the app's model-path config into its workspace when the file is absent or the agent's
 * own; a user's file (or a link, or a folder) in its place is left as it is. Says what it did.
 */
export async function writeModelConfig(workspace: string, config: ModelStoreUse["config"]): Promise<"written" | "kept-user-file" | "unchanged" | "none"> {
  if (!config) return "none";
  const spec = CONFIG_FILES[config];
  const file = join(workspace, spec.path);
  const text = spec.text();
  const st = await lstat(file).catch(() => null);
  if (!st) {
    // `wx`: never write through a file (or link) that appeared meanwhile.
    await writeFile(file, text, { flag: "wx", mode: 0o644 }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "EEXIST") throw err;
    });
    return "written";
  }
  if (!st.isFile()) return "kept-user-file";
  const current = await readFile(file, "utf8");
  if (!current.startsWith(AGENT_MARKER)) return "kept-user-file";
  if (current === text) return "unchanged";
  await writeFile(file, text, { mode: 0o644 });
  return "written";
}

/** Size of the store per top-level folder, by a bounded walk (at most `limit` entries in all). */
export async function measureModelStore(dir: string, limit = 100_000, now = () => new Date()): Promise<ModelStore | null> {
  let names: { name: string; dir: boolean }[];
  try {
    names = (await readdir(dir, { withFileTypes: true })).map((e) => ({ name: e.name, dir: e.isDirectory() }));
  } catch {
    return null;
  }
  let left = limit;
  let partial = false;
  let totalBytes = 0;
  const folders: ModelStore["folders"] = [];
  let loose = 0;
  for (const n of names.sort((a, b) => a.name.localeCompare(b.name))) {
    if (left <= 0) {
      partial = true;
      break;
    }
    const size = await measureTree(join(dir, n.name), left);
    left -= size.entries;
    if (!size.complete) partial = true;
    totalBytes += size.bytes;
    if (n.dir) folders.push({ name: n.name.slice(0, 255), bytes: size.bytes });
    else loose += size.bytes;
  }
  if (loose > 0) folders.push({ name: "(files at the top)", bytes: loose });
  folders.sort((a, b) => b.bytes - a.bytes || a.name.localeCompare(b.name));
  return { path: dir, totalBytes, folders: folders.slice(0, 64), partial, at: now().toISOString() };
}
