// dcc-agent: the host agent's command-line entry.
const VERSION = "0.1.0";

if (process.argv.includes("--version")) {
  console.log(VERSION);
} else {
  console.error("dcc-agent: the agent channel is not wired yet; run with --version");
  process.exit(2);
}
