// Reconnect delays: exponential backoff with full jitter (a uniformly random delay between zero
// and the capped exponential), so a fleet of agents does not reconnect in lock-step.
export interface BackoffOptions {
  baseMs: number;
  capMs: number;
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  constructor(private readonly opts: BackoffOptions) {}

  /** The delay before the next attempt; each call widens the window until the cap. */
  next(): number {
    const ceiling = Math.min(this.opts.capMs, this.opts.baseMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.floor((this.opts.random ?? Math.random)() * ceiling);
  }

  reset(): void {
    this.attempt = 0;
  }
}
