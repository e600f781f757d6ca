// The agent's operations layer: what main.ts wires to the dispatcher.
export { Ops, type OpsOptions } from "./ops";
export { AppActions, type ActionContext, type ActionResult } from "./actions";
export { AppObserver, type OpsLog } from "./observer";
export { DockerContainers, type ContainerOps } from "./containers";
export { InstallRunner } from "./install";
export { assertPortFree } from "./steps";
export { OpsError, ParamsValidationError, AbortedError, type OpsErrorCode } from "./errors";
export { ExecError, exec, type Exec, type ExecOptions, type ExecResult } from "./exec";
export { ComposeRunner, loadComposeBase, renderCompose, serializeCompose, type ComposeOps } from "./compose";
export { SimpleGitOps, type GitOps } from "./git";
export { collectHostFacts } from "./facts";
export { readNvidiaFacts, readGpuUsage, parseGpuCsv, parseComputeAppsCsv } from "./nvidia";
export { probePort, type Probe, type ProbeResult } from "./probe";
