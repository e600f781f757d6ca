import { mkdtemp, mkdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AGENT_MARKER, ensureModelStore, measureModelStore, writeModelConfig } from "./model-store";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "dcc-models-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("model store", () => {
  it("creates the store and its folders, keeping what is there", async () => {
    const store = join(dir, ".models");
    await mkdir(join(store, "Lora"), { recursive: true });
    await writeFile(join(store, "Lora", "mine.safetensors"), "x");
    await ensureModelStore(store, process.getuid!(), process.getgid!());
    expect((await stat(join(store, "Stable-diffusion"))).isDirectory()).toBe(true);
    expect(await readFile(join(store, "Lora", "mine.safetensors"), "utf8")).toBe("x");
  });

  it("writes ComfyUI's extra_model_paths.yaml only where no user file is", async () => {
    expect(await writeModelConfig(dir, "comfyui")).toBe("written");
    const text = await readFile(join(dir, "extra_model_paths.yaml"), "utf8");
    expect(text.startsWith(AGENT_MARKER)).toBe(true);
    expect(text).toContain("base_path: /models");
    expect(await writeModelConfig(dir, "comfyui")).toBe("unchanged");
    // The user's own file stays byte for byte.
    await writeFile(join(dir, "extra_model_paths.yaml"), "mine:\n  base_path: /data\n");
    expect(await writeModelConfig(dir, "comfyui")).toBe("kept-user-file");
    expect(await readFile(join(dir, "extra_model_paths.yaml"), "utf8")).toBe("mine:\n  base_path: /data\n");
    // A link is never written through.
    await rm(join(dir, "extra_model_paths.yaml"));
    await writeFile(join(dir, "target"), "t");
    await symlink(join(dir, "target"), join(dir, "extra_model_paths.yaml"));
    expect(await writeModelConfig(dir, "comfyui")).toBe("kept-user-file");
    expect(await readFile(join(dir, "target"), "utf8")).toBe("t");
    expect(await writeModelConfig(dir, null)).toBe("none");
  });

  it("measures the store per top-level folder, bounded", async () => {
    await mkdir(join(dir, "Stable-diffusion"));
    await mkdir(join(dir, "Lora", "sub"), { recursive: true });
    await writeFile(join(dir, "Stable-diffusion", "a.safetensors"), Buffer.alloc(5000));
    await writeFile(join(dir, "Lora", "sub", "b.safetensors"), Buffer.alloc(300));
    await writeFile(join(dir, "loose.bin"), Buffer.alloc(10));
    const m = (await measureModelStore(dir))!;
    expect(m.folders.map((f) => f.name)).toEqual(["Stable-diffusion", "Lora", "(files at the top)"]);
    expect(m.folders[0]!.bytes).toBeGreaterThanOrEqual(5000);
    expect(m.folders[2]!.bytes).toBe(10);
    expect(m.partial).toBe(false);
    expect((await measureModelStore(dir, 2))!.partial).toBe(true);
    expect(await measureModelStore(join(dir, "absent"))).toBeNull();
  });
});
