// The dependency inventory an agent reports after each deploy at a new commit: every package named
// by the dependency manifests in the app's workspace, with its exact version when the manifest pins
// one (null = a range or no version: unpinned). The console checks PyPI and npm packages against OSV.
import { z } from "zod";
import { AppNameSchema } from "./validation";

export const ECOSYSTEMS = ["PyPI", "npm", "conda"] as const;
export type Ecosystem = (typeof ECOSYSTEMS)[number];

/** Most packages one inventory carries (a large ComfyUI install lists a few hundred). */
export const MAX_PACKAGES = 5000;

export const DependencyPackageSchema = z.strictObject({
  name: z.string().min(1).max(214),
  /** The exact pinned version, or null when the manifest gives a range or nothing. */
  version: z.string().min(1).max(128).nullable(),
  ecosystem: z.enum(ECOSYSTEMS),
  /** The manifest it came from, relative to the workspace (e.g. `custom_nodes/x/requirements.txt`). */
  manifest: z.string().min(1).max(512),
});
export type DependencyPackage = z.infer<typeof DependencyPackageSchema>;

export const DependenciesMessageSchema = z.strictObject({
  type: z.literal("dependencies"),
  app: AppNameSchema,
  commitSha: z.string().regex(/^[0-9a-f]{40,64}$/),
  packages: z.array(DependencyPackageSchema).max(MAX_PACKAGES),
  /** Manifests that were found (relative paths), so an empty inventory is told apart from "no manifests". */
  manifests: z.array(z.string().min(1).max(512)).max(1000),
  /** True when more packages were found than one message carries. */
  truncated: z.boolean().optional(),
});
export type DependenciesMessage = z.infer<typeof DependenciesMessageSchema>;
