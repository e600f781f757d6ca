// What the agent tells the console about its apps. The ops layer produces these objects; the
// channel carries them; the console applies them only to the reporting host's own apps.
import { z } from "zod";
import { APP_HEALTH, APP_STATUSES } from "./enums";
import { AppNameSchema } from "./validation";

// ---- startup progress: a download the app's own output shows while it is STARTING
export const StartupProgressSchema = z.strictObject({
  label: z.string().max(200),
  percent: z.number().min(0).max(100).nullable(),
  updatedAt: z.string().max(40),
});
export type StartupProgressReport = z.infer<typeof StartupProgressSchema>;
// ---- end startup progress

export const StatusReportSchema = z.strictObject({
  app: AppNameSchema,
  status: z.enum(APP_STATUSES),
  health: z.enum(APP_HEALTH),
  phase: z.string().max(200).nullable().optional(),
  lastError: z.string().max(4000).nullable().optional(),
  commitSha: z.string().regex(/^[0-9a-f]{40,64}$/).optional(),
  /** Docker's own word for the container state (running, exited, dead, …) and exit code. */
  containerState: z.string().max(32).optional(),
  exitCode: z.number().int().optional(),
  /** While STARTING: the download the app's output shows (absent otherwise). */
  progress: StartupProgressSchema.optional(),
  at: z.string().max(40),
});
export type StatusReport = z.infer<typeof StatusReportSchema>;

export const UsageSampleSchema = z.strictObject({
  app: AppNameSchema,
  cpuPct: z.number().min(0),
  memoryBytes: z.number().int().min(0),
  memoryLimitBytes: z.number().int().min(0).optional(),
  gpuMemoryMiB: z.number().min(0).optional(),
  gpuUtilPct: z.number().min(0).max(100).optional(),
  at: z.string().max(40),
});
export type UsageSample = z.infer<typeof UsageSampleSchema>;

export const ProgressSchema = z.strictObject({
  step: z.enum(["validate", "clone", "fetch", "checkout", "pull", "compose", "install", "start", "probe", "stop", "remove", "cleanup"]),
  message: z.string().max(2000).optional(),
  /** 0–100 when the step knows how far it is (git clone and image pulls report this). */
  pct: z.number().min(0).max(100).optional(),
  /** An image pull: compressed bytes downloaded and the sum of the layer sizes known so far. */
  bytes: z.strictObject({ done: z.number().int().min(0), total: z.number().int().min(0) }).optional(),
  /** An image pull: the layer being worked on (short id) and what is happening to it. */
  layer: z.string().max(100).optional(),
  /** Output lines of the step (install command output is kept as deploy events). */
  output: z.array(z.string().max(4000)).max(200).optional(),
});
export type Progress = z.infer<typeof ProgressSchema>;

export const LogLineSchema = z.strictObject({
  app: AppNameSchema,
  stream: z.enum(["stdout", "stderr"]),
  line: z.string().max(16_000),
  at: z.string().max(40),
});
export type LogLine = z.infer<typeof LogLineSchema>;

/** An app the agent manages, as listed in hello so the console can reconcile after a restart. */
export const InventoryItemSchema = z.strictObject({
  app: AppNameSchema,
  appId: z.string().max(64),
  commitSha: z.string().max(64).nullable(),
  containerState: z.string().max(32).nullable(),
  status: z.enum(APP_STATUSES),
  /** The full observation (health, phase, lastError): on reconnect it is the truth. */
  observed: StatusReportSchema.optional(),
});
export type InventoryItem = z.infer<typeof InventoryItemSchema>;
