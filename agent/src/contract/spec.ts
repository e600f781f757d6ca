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

// ---- gateway
/** Minutes without a request before an app behind the gateway is put to sleep (at most 30 days). */
export const IdleStopMinutesSchema = z.number().int().min(1).max(43_200);
// ---- end gateway

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
    // ---- gateway: app fields the agent's gateway acts on
    /** With a gateway on the host, publish the port on every interface anyway (not just 127.0.0.1). */
    publicPort: z.boolean().optional(),
    /** Stop the app after this many minutes without a request through the gateway (0/absent: never). */
    idleStopMinutes: IdleStopMinutesSchema.nullable().optional(),
    // ---- end gateway
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
    start: z.strictObject({ spec: spec.optional() }),
    stop: z.strictObject({}),
    restart: z.strictObject({ spec: spec.optional() }),
    // appId, when given, must be the app the agent has under that name (a forced removal's
    // leftovers are cleaned without touching a newer app that reuses the name).
    deinstall: z.strictObject({ appId: z.string().min(1).max(64).regex(/^[A-Za-z0-9-]+$/).optional() }),
  } satisfies Record<LifecycleAction, z.ZodType>;
}
