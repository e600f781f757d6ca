// The shared model store and startup watching, as both sides see them: the folder name under the
// workspace root, where apps find it (/models), how a template tells its app about it (flags
// appended to the start command, or a config file the agent writes), and the stall limit.
import { z } from "zod";

/** `<workspace root>/.models`: not a DNS label, so it can never be taken for an app's workspace. */
export const MODELS_DIR_NAME = ".models";
/** Where apps with `sharedModels` see the store. */
export const MODELS_MOUNT = "/models";

/** One start-command argument a template appends: an option, or a path under /models. Never user text. */
export const ModelArgSchema = z
  .string()
  .max(200)
  .regex(/^(--?[A-Za-z][A-Za-z0-9_-]*(=\/models(\/[A-Za-z0-9._-]+)*)?|\/models(\/[A-Za-z0-9._-]+)*)$/, { error: "must be an option or a path under /models" })
  .refine((a) => !a.split("/").some((s) => s === ".."), { error: "must not contain .." });

/** Config files the agent knows how to write for an app (never over a file the agent did not write). */
export const MODEL_CONFIGS = ["comfyui"] as const;

export const ModelStoreUseSchema = z.strictObject({
  args: z.array(ModelArgSchema).max(32).default([]),
  config: z.enum(MODEL_CONFIGS).nullable().default(null),
});
export type ModelStoreUse = z.infer<typeof ModelStoreUseSchema>;

export const STALL_DEFAULT_S = 600;
/** No output and no answer on the port for this long while STARTING → phase `stalled`. */
export const StartupStallSchema = z.number({ error: "must be a number of seconds" }).int({ error: "must be a whole number" }).min(5).max(86_400);

/** Top-level folders the store starts with (A1111 family, ComfyUI and LLM UIs find their models in them). */
export const MODEL_FOLDERS = ["Stable-diffusion", "Lora", "VAE", "embeddings", "ControlNet", "upscale_models", "clip", "unet", "llm"] as const;
