// Bundles the agent into one file (dist/dcc-agent.mjs) so a GPU box needs only Node 20.
import { build } from "esbuild";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
await build({
  entryPoints: [join(here, "src/main.ts")],
  outfile: join(here, "dist/dcc-agent.mjs"),
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  // dockerode pulls ssh2, whose optional native add-ons npm does not build; the agent only talks
  // to the local Docker socket, so they stay out.
  external: ["cpu-features", "*.node"],
  banner: { js: "#!/usr/bin/env node\nimport { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  logLevel: "warning",
});
