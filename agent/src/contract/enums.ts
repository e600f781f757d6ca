// Closed lists that the agent, the console's code and the console's database share. Each is
// declared here only: zod enums, TypeScript types and the database's CHECK constraints derive
// from these arrays.

/** An app's lifecycle status as the agent observes it. */
export const APP_STATUSES = ["RUNNING", "STARTING", "STOPPED"] as const;
export type AppStatus = (typeof APP_STATUSES)[number];

/** Whether the app's port answers. */
export const APP_HEALTH = ["reachable", "unreachable", "unknown"] as const;
export type AppHealth = (typeof APP_HEALTH)[number];

/** How an app uses GPUs: never, when the host has a free one, or only on a host with one. */
export const GPU_MODES = ["none", "optional", "required"] as const;
export type GpuMode = (typeof GPU_MODES)[number];
