// The agent's operations layer: what main.ts wires to the channel.
export { AppManager, assertPortFree, type AppManagerOptions, type ApplyResult, type LogOptions, type OpsLog } from "./manager";
export { OpsError, ParamsValidationError, type OpsErrorCode } from "./errors";
export { ExecError, exec, type Exec, type ExecOptions, type ExecResult } from "./exec";
export { ComposeRunner, loadComposeBase, renderCompose, type ComposeOps } from "./compose";
export { SimpleGitOps, type GitOps } from "./git";
export { collectHostFacts } from "./facts";
export { readNvidiaFacts, readGpuUsage, parseGpuCsv, parseComputeAppsCsv } from "./nvidia";
export { probePort, type Probe, type ProbeResult } from "./probe";
