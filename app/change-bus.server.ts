import { EventEmitter } from "node:events";
import type { LiveChange } from "./live-event.server";

/** In-process fan-out of changes; the event table carries them to other console processes. */
export class ChangeBus extends EventEmitter {
  constructor() {
    super();
    this.setMaxListeners(0);
  }
  publish(change: LiveChange): void {
    this.emit("change", change);
  }
  subscribe(fn: (change: LiveChange) => void): () => void {
    this.on("change", fn);
    return () => this.off("change", fn);
  }
}
