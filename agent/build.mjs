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
  // CommonJS dependencies (dockerode → ssh2) expect require, __filename and __dirname.
  banner: {
    js: [
      "#!/usr/bin/env node",
      "import { createRequire as __cr } from 'node:module'; import { fileURLToPath as __fu } from 'node:url'; import { dirname as __dn } from 'node:path';",
      "const require = __cr(import.meta.url); const __filename = __fu(import.meta.url); const __dirname = __dn(__filename);",
    ].join("\n"),
  },
  logLevel: "warning",
});
// The GPU ledger and preflight on their own, for scripts/gpu-check.sh on a host without Docker.
await build({
  entryPoints: [join(here, "src/gpu-check.ts")],
  outfile: join(here, "dist/gpu-check.mjs"),
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  banner: { js: "#!/usr/bin/env node" },
  logLevel: "warning",
});
