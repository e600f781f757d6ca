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
// -- git refs, history and rollback ------------------------------------------------------------
import { CommitShaSchema, GitRefSchema } from "./git-ref";
// -- end git refs ------------------------------------------------------------------------------
import { EnvSchema, HealthPathSchema, ResourcesSchema, SecretNamesSchema } from "./app-config";
import { ModelStoreUseSchema, StartupStallSchema } from "./models";

// ---- gateway
/** Minutes without a request before an app behind the gateway is put to sleep (at most 30 days). */
export const IdleStopMinutesSchema = z.number().int().min(1).max(43_200);
// ---- end gateway

export const APP_ACTIONS = ["provision", "start", "stop", "restart", "reinstall", "update", "deinstall"] as const;
export type AppAction = (typeof APP_ACTIONS)[number];

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
    // -- git refs, history and rollback --------------------------------------------------------
    /** Branch, tag or full commit SHA to deploy; null or absent: the remote's default branch. */
    gitRef: GitRefSchema.nullable().optional(),
    /** Fetch the repository's submodules (one level, each URL checked like the repository's). */
    gitSubmodules: z.boolean().optional(),
    // -- end git refs --------------------------------------------------------------------------
    // ---- app configuration (environment, secrets, limits, probe path). Defaults keep records
    // written before these fields existed readable.
    env: EnvSchema.default({}),
    /** Names only: the values travel beside the command, signed apart (./command-secrets.ts). */
    secretNames: SecretNamesSchema.default([]),
    /** Changes whenever a secret value or the git credential changes (an opaque id, never derived from a value). */
    secretsVersion: z.string().max(64).regex(/^[A-Za-z0-9-]+$/).nullable().default(null),
    resources: ResourcesSchema.default({}),
    healthPath: HealthPathSchema.default("/"),
    // ---- end app configuration
    // ---- shared model store, startup watching, GPU ledger (optional: older payloads stay valid)
    /** Mount the host's model store at /models; how the app finds it. Null: no store. */
    modelStore: ModelStoreUseSchema.nullable().optional(),
    /** No output and no answer on the port for this long while STARTING → phase `stalled` (default STALL_DEFAULT_S). */
    startupStallSeconds: StartupStallSchema.optional(),
    /** Memory the app needs free on each assigned GPU before it starts (refused otherwise, unless forced). */
    gpuMinMemoryMiB: z.number().int().min(1).max(1_048_576).nullable().optional(),
    // ---- end
    // ---- gateway: app fields the agent's gateway acts on
    /** With a gateway on the host, publish the port on every interface anyway (not just 127.0.0.1). */
    publicPort: z.boolean().optional(),
    /** Stop the app after this many minutes without a request through the gateway (0/absent: never). */
    idleStopMinutes: IdleStopMinutesSchema.nullable().optional(),
    // ---- end gateway
  });
}
export type DeploySpec = z.infer<ReturnType<typeof deploySpecSchema>>;

/** The configuration part of a spec for an app that has none (no env, secrets or limits). */
export const NO_APP_CONFIG = { env: {}, secretNames: [], secretsVersion: null, resources: {}, healthPath: "/" } satisfies Pick<
  DeploySpec,
  "env" | "secretNames" | "secretsVersion" | "resources" | "healthPath"
>;

/** Parameters per action: the spec for actions that (re)create, a flag for a clean reinstall. */
export function actionParamsSchema(rules: RepositoryRules) {
  const spec = deploySpecSchema(rules);
  return {
    provision: z.strictObject({ spec }),
    update: z.strictObject({ spec }),
    // `commitSha`: a rollback, this exact (earlier deployed) commit instead of the ref's newest.
    reinstall: z.strictObject({ spec, clean: z.boolean().default(false), commitSha: CommitShaSchema.optional() }),
    // start and restart carry the spec so an app that is not installed on the host (first deploy
    // failed, workspace lost) is deployed instead of refused: every action recovers every state.
    // `force` starts despite a GPU memory shortfall or a CUDA mismatch found by the preflight.
    start: z.strictObject({ spec: spec.optional(), force: z.boolean().optional() }),
    stop: z.strictObject({}),
    restart: z.strictObject({ spec: spec.optional(), force: z.boolean().optional() }),
    // appId, when given, must be the app the agent has under that name (a forced removal's
    // leftovers are cleaned without touching a newer app that reuses the name).
    deinstall: z.strictObject({ appId: z.string().min(1).max(64).regex(/^[A-Za-z0-9-]+$/).optional() }),
  } satisfies Record<AppAction, z.ZodType>;
}
