// Sends the dependency inventory of an app after a deploy at a new commit. Scanning runs after the
// deploy's result, never in its way; while the console is away the newest inventory per app waits
// and goes out on the next connection.
import type { DependenciesMessage } from "./contract/dependencies";
import type { AgentMessage } from "./contract/protocol";
import type { Logger } from "./log";
import { scanWorkspace } from "./ops/dependencies";

export interface DependencyReporterOptions {
  /** Returns false when not connected (the message then waits for `flush`). */
  send: (msg: AgentMessage) => boolean;
  log: Logger;
  scan?: typeof scanWorkspace;
}

export class DependencyReporter {
  private readonly pending = new Map<string, DependenciesMessage>();
  private readonly reported = new Map<string, string>();

  constructor(private readonly o: DependencyReporterOptions) {}

  /** A provision, reinstall or update succeeded with `commitSha` checked out in `workspace`. */
  deployed(app: string, commitSha: string, workspace: string): void {
    if (this.reported.get(app) === commitSha) return;
    void (this.o.scan ?? scanWorkspace)(workspace)
      .then((inv) => {
        for (const p of inv.problems) this.o.log("warn", "dependency manifest not read", { app, manifest: p.manifest, error: p.error });
        this.o.log("info", "dependency inventory", { app, commitSha, manifests: inv.manifests.length, packages: inv.packages.length, truncated: inv.truncated });
        const msg: DependenciesMessage = { type: "dependencies", app, commitSha, packages: inv.packages, manifests: inv.manifests, ...(inv.truncated ? { truncated: true } : {}) };
        this.reported.set(app, commitSha);
        this.pending.set(app, msg);
        this.flush();
      })
      .catch((e) => this.o.log("warn", "dependency scan failed", { app, error: (e as Error).message }));
  }

  /** Sends what waits; called after each scan and when the connection is ready again. */
  flush(): void {
    for (const [app, msg] of this.pending) {
      if (!this.o.send(msg)) return;
      this.pending.delete(app);
    }
  }
}
