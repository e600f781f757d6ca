// What the console asks an agent to run: the deploy spec carried by lifecycle commands. The agent
// re-validates every field with these schemas before it touches git, the disk or Docker.
import { z } from "zod";
import {
  AppNameSchema,
  CapabilitySchema,
  CommandSchema,
  ImageSchema,
  KeepPathSchema,
  PortSchema,
  repositorySchema,
  type RepositoryRules,
} from "./validation";
import { ModelStoreUseSchema, StartupStallSchema } from "./models";

export const LIFECYCLE_ACTIONS = ["provision", "start", "stop", "restart", "reinstall", "update", "deinstall"] as const;
export type LifecycleAction = (typeof LIFECYCLE_ACTIONS)[number];

export function deploySpecSchema(rules: RepositoryRules) {
  return z.strictObject({
    appId: z.string().min(1).max(64).regex(/^[A-Za-z0-9-]+$/),
    name: AppNameSchema,
    repository: repositorySchema(rules),
    startCommand: CommandSchema,
    installCommand: CommandSchema.nullable(),
    port: PortSchema,
    /** Resolved by the console: app image, else template image, else the console's base image. */
    image: ImageSchema,
    /** NVIDIA device indexes assigned to this app (empty: no GPU reservation). */
    gpuDevices: z.array(z.string().regex(/^\d{1,3}$/)).max(16),
    capAdd: z.array(CapabilitySchema).max(8),
    keepPaths: z.array(KeepPathSchema).max(32),
    // ---- shared model store, startup watching, GPU ledger (optional: older payloads stay valid)
    /** Mount the host's model store at /models; how the app finds it. Null: no store. */
    modelStore: ModelStoreUseSchema.nullable().optional(),
    /** No output and no answer on the port for this long while STARTING → phase `stalled` (default STALL_DEFAULT_S). */
    startupStallSeconds: StartupStallSchema.optional(),
    /** Memory the app needs free on each assigned GPU before it starts (refused otherwise, unless forced). */
    gpuMinMemoryMiB: z.number().int().min(1).max(1_048_576).nullable().optional(),
    // ---- end
  });
}
export type DeploySpec = z.infer<ReturnType<typeof deploySpecSchema>>;

/** Parameters per action: the spec for actions that (re)create, a flag for a clean reinstall. */
export function actionParamsSchema(rules: RepositoryRules) {
  const spec = deploySpecSchema(rules);
  return {
    provision: z.strictObject({ spec }),
    update: z.strictObject({ spec }),
    reinstall: z.strictObject({ spec, clean: z.boolean().default(false) }),
    // start and restart carry the spec so an app that is not installed on the host (first deploy
    // failed, workspace lost) is deployed instead of refused: every action recovers every state.
    // `force` starts despite a GPU memory shortfall or a CUDA mismatch found by the preflight.
    start: z.strictObject({ spec: spec.optional(), force: z.boolean().optional() }),
    stop: z.strictObject({}),
    restart: z.strictObject({ spec: spec.optional(), force: z.boolean().optional() }),
    // appId, when given, must be the app the agent has under that name (a forced removal's
    // leftovers are cleaned without touching a newer app that reuses the name).
    deinstall: z.strictObject({ appId: z.string().min(1).max(64).regex(/^[A-Za-z0-9-]+$/).optional() }),
  } satisfies Record<LifecycleAction, z.ZodType>;
}
