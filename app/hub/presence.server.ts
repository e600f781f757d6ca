// Coalesces "host is online" writes: every hello that arrives while a write is in flight joins
// the next one, so a reconnect storm of thousands of agents costs a few commits, not one each.
import type { ConsoleContext } from "../context.server";
import { hostsConnected, type HostOnline } from "../services/host-presence.server";

interface Waiting {
  entry: HostOnline;
  resolve: (ok: boolean) => void;
  reject: (e: unknown) => void;
}

export class PresenceWriter {
  private queue: Waiting[] = [];
  private busy = false;

  constructor(private readonly ctx: Pick<ConsoleContext, "db" | "bus">) {}

  /** Resolves true once the host is recorded online, false if it was revoked meanwhile. */
  online(entry: HostOnline): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.queue.push({ entry, resolve, reject });
      if (!this.busy) setImmediate(() => void this.flush());
    });
  }

  private async flush(): Promise<void> {
    if (this.busy || !this.queue.length) return;
    this.busy = true;
    const batch = this.queue.splice(0, 2000);
    try {
      const ok = await hostsConnected(this.ctx, batch.map((w) => w.entry));
      batch.forEach((w, i) => w.resolve(ok[i]));
    } catch (e) {
      for (const w of batch) w.reject(e);
    } finally {
      this.busy = false;
      if (this.queue.length) setImmediate(() => void this.flush());
    }
  }
}
