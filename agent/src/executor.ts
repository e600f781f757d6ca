// What runs a verified command. The channel only knows this interface; main.ts builds the real
// one: `ping` is built in (harmless, for tests and dispatch benchmarks), lifecycle actions and the
// host-wide `cleanup` of orphans go to the ops layer's app manager.
import type { CommandAction } from "./contract/protocol";
import type { InventoryItem, Progress, StatusReport } from "./contract/reports";
import type { LifecycleAction } from "./contract/spec";

export type ProgressFn = (p: Progress) => void;
export type CommandResult = Record<string, unknown>;

export interface Executor {
  /** Runs one command whose signature, target, expiry and parameters were already checked. */
  run(action: CommandAction, app: string | null, params: Record<string, unknown>, progress: ProgressFn): Promise<CommandResult>;
  inventory(): Promise<InventoryItem[]>;
}

/** The slice of the ops layer's AppManager the channel uses. */
export interface LifecycleManager {
  apply(action: LifecycleAction, app: string, params: Record<string, unknown>, progress: ProgressFn): Promise<CommandResult | void>;
  /** Cleanup of orphans (the host-wide `cleanup` action). */
  cleanup?(params: Record<string, unknown>): Promise<CommandResult>;
  inventory(): Promise<InventoryItem[]>;
}

export interface StatusSource {
  watch(onStatus: (r: StatusReport) => void): unknown;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runPing(params: Record<string, unknown>): Promise<CommandResult> {
  const delayMs = typeof params.delayMs === "number" ? params.delayMs : 0;
  if (delayMs > 0) await sleep(delayMs);
  return { pong: true, ...(typeof params.echo === "string" ? { echo: params.echo } : {}), at: new Date().toISOString() };
}

/**
 * `manager()` resolves once the app manager is up (it waits for one being started), or to null
 * when there is none (Docker not reachable, its folders could not be prepared): lifecycle
 * commands then fail with `unavailable()` as the reason.
 */
export function createExecutor(manager: () => Promise<LifecycleManager | null>, unavailable: () => string): Executor {
  return {
    async run(action, app, params, progress) {
      if (action === "ping") return runPing(params);
      const m = await manager();
      if (!m) throw new Error(unavailable());
      if (action === "cleanup") {
        if (!m.cleanup) throw new Error("cleanup is not available on this agent");
        return m.cleanup(params);
      }
      if (!app) throw new Error(`${action} needs an app`);
      return (await m.apply(action, app, params, progress)) ?? {};
    },
    inventory: async () => (await (await manager())?.inventory()) ?? [],
  };
}
