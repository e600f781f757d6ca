// Cleanup of orphans: what the console may ask (`cleanup` command parameters) and what the agent
// answers (the command's result). An orphan is something of ours on the host that no app the
// agent manages owns: a workspace under the root, a git or compose dir in the agent's state dir,
// or a container or network carrying our labels (dcc.managed=true, dcc.host=<this host>). The
// agent decides what is an orphan from a fresh scan every time; the console's list only names
// candidates, so a stale or forged list can never widen what is removed.
import { z } from "zod";
import { AppNameSchema } from "./validation";

export const ORPHAN_KINDS = ["container", "network", "workspace", "git", "compose"] as const;
export type OrphanKind = (typeof ORPHAN_KINDS)[number];

/**
 * How an item is named in a request: its kind and id. The id is the Docker id of a container or
 * network, and the folder's name (a DNS label: the app name it would belong to) for the others.
 */
export const OrphanRefSchema = z.strictObject({
  kind: z.enum(ORPHAN_KINDS),
  id: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, { error: "must be a Docker id or a folder name" }),
});
export type OrphanRef = z.infer<typeof OrphanRefSchema>;

/** Most items one cleanup command may name. */
export const MAX_CLEANUP_ITEMS = 500;

export const CleanupParamsSchema = z.strictObject({
  /** Scan and report what would go; remove nothing. */
  dryRun: z.boolean(),
  /** Only these (when they are still orphans in the agent's fresh scan); all orphans when absent. */
  items: z.array(OrphanRefSchema).min(1).max(MAX_CLEANUP_ITEMS).optional(),
  /** Leave items younger than this (scheduled cleanup: never what was touched recently). */
  minAgeSeconds: z.number().int().min(0).max(10 * 365 * 86_400).optional(),
  /**
   * Apps the console still records on this host: never orphans, even when the agent holds no
   * record of them (say, workspaces restored onto a box whose agent state was not).
   */
  keep: z.array(AppNameSchema).max(2000).optional(),
});
export type CleanupParams = z.infer<typeof CleanupParamsSchema>;

const Iso = z.string().max(40);

/** One orphan as found by a scan. */
export const OrphanItemSchema = z.strictObject({
  kind: z.enum(ORPHAN_KINDS),
  id: OrphanRefSchema.shape.id,
  /** Container or network name, or the folder's absolute path. */
  name: z.string().max(4096),
  /** The app it belonged to (folder name or dcc.app label), when that is a valid app name. */
  app: AppNameSchema.nullable(),
  /** Bytes: du -sb of a folder (a bounded walk that never follows links), the writable layer of a container, 0 for a network. */
  sizeBytes: z.number().int().min(0),
  /** False when the walk stopped at its bound or could not read everything: sizeBytes is then a lower bound. */
  sizeComplete: z.boolean(),
  /** Newest modification time in a folder's tree, or a container's / network's creation time. */
  at: Iso.nullable(),
  ageSeconds: z.number().int().min(0).nullable(),
  /** A container's state (running, exited, …). */
  state: z.string().max(32).optional(),
  reason: z.string().max(300),
});
export type OrphanItem = z.infer<typeof OrphanItemSchema>;

/** An item a run chose, removed, skipped or failed on, with what a person needs to recognise it. */
export const OrphanOutcomeSchema = z.strictObject({
  kind: z.enum(ORPHAN_KINDS),
  id: OrphanRefSchema.shape.id,
  name: z.string().max(4096).optional(),
  sizeBytes: z.number().int().min(0).optional(),
  /** Why it was skipped, or why removing it failed. */
  reason: z.string().max(1000).optional(),
});
export type OrphanOutcome = z.infer<typeof OrphanOutcomeSchema>;

export const CleanupResultSchema = z.strictObject({
  dryRun: z.boolean(),
  /** When the scan behind `found` finished. */
  scannedAt: Iso,
  /** The orphans on the host after this run: everything found by a dry run, what is left after a removal. */
  found: z.array(OrphanItemSchema),
  /** How many orphans there were in all (`found` may be cut short to keep the answer small). */
  foundTotal: z.number().int().min(0),
  /** What this run would remove (dry run) or tried to remove. */
  selected: z.array(OrphanOutcomeSchema),
  removed: z.array(OrphanOutcomeSchema),
  /** Named in the request but not removed: no longer an orphan, gone, or too young. */
  skipped: z.array(OrphanOutcomeSchema),
  failed: z.array(OrphanOutcomeSchema),
  /** Bytes removed (dry run: bytes that would be freed). */
  freedBytes: z.number().int().min(0),
  /** True when a list above was cut short to fit the command result. */
  truncated: z.boolean().optional(),
});
export type CleanupResult = z.infer<typeof CleanupResultSchema>;
