// Bundles the console's Node entry (app/server.ts) into build/server.mjs; npm packages stay external.
import { build } from "esbuild";

await build({
  entryPoints: ["app/server.ts"],
  outfile: "build/server.mjs",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  packages: "external",
  sourcemap: "linked",
  logLevel: "warning",
});
