// The container guard: iptables rules that keep app containers off the cloud metadata range
// (169.254.0.0/16, forwarded traffic: DOCKER-USER, which Docker consults before its own rules)
// and off this host's console port and metadata addresses (traffic to the host itself: INPUT from
// Docker's bridges). Every rule carries a comment with this agent's tag; start removes the tagged
// rules and inserts them again (idempotent), stop removes them. What happened is reported in the
// host facts, so the hosts page says whether the guard is in place.
import { createHash } from "node:crypto";
import { exec as realExec, type Exec } from "../ops/exec";

export interface FirewallOptions {
  /** Distinguishes this agent's rules from another's on the same host (hash of its state dir). */
  tag: string;
  /** Host ports containers must not reach (the console's, when it runs here). */
  blockPorts: number[];
  exec?: Exec;
  iptables?: string;
}

export const METADATA_RANGE = "169.254.0.0/16";
const BRIDGES = ["docker0", "br-+"];

export const firewallTag = (stateDir: string) => `dcc-guard-${createHash("sha256").update(stateDir).digest("hex").slice(0, 12)}`;

/** The rules as iptables argument lists (chain first), in the order they are inserted. */
export function guardRules(o: Pick<FirewallOptions, "tag" | "blockPorts">): string[][] {
  const tag = ["-m", "comment", "--comment", o.tag];
  const reject = ["-j", "REJECT"];
  const rules: string[][] = [["DOCKER-USER", "-d", METADATA_RANGE, ...tag, ...reject]];
  for (const br of BRIDGES) {
    rules.push(["INPUT", "-i", br, "-d", METADATA_RANGE, ...tag, ...reject]);
    for (const port of o.blockPorts) rules.push(["INPUT", "-i", br, "-p", "tcp", "--dport", String(port), ...tag, "-j", "REJECT", "--reject-with", "tcp-reset"]);
  }
  return rules;
}

export class ContainerGuard {
  private readonly exec: Exec;
  private readonly bin: string;

  constructor(private readonly o: FirewallOptions) {
    this.exec = o.exec ?? realExec;
    this.bin = o.iptables ?? "iptables";
  }

  private run(args: string[]) {
    return this.exec([this.bin, "-w", "5", ...args], { env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C" }, timeoutMs: 15_000 });
  }

  /** Removes this agent's old rules, inserts the current ones; never throws. */
  async apply(): Promise<{ ok: boolean; detail: string }> {
    try {
      await this.remove();
      // Inserted at the top, so Docker's own ACCEPT rules (and a user's) come after them.
      for (const rule of [...guardRules(this.o)].reverse()) await this.run(["-I", rule[0], "1", ...rule.slice(1)]);
      const ports = this.o.blockPorts.length ? `, host port ${this.o.blockPorts.join(", ")}` : "";
      return { ok: true, detail: `containers cannot reach ${METADATA_RANGE}${ports}` };
    } catch (e) {
      const msg = (e as Error).message.split("\n")[0];
      return { ok: false, detail: `iptables rules not in place: ${msg}`.slice(0, 500) };
    }
  }

  /** Deletes every rule carrying this agent's tag (from `iptables -S`, `-A` turned into `-D`). */
  async remove(): Promise<void> {
    for (const chain of ["DOCKER-USER", "INPUT"]) {
      let listing: string;
      try {
        listing = (await this.run(["-S", chain])).stdout;
      } catch (e) {
        // No DOCKER-USER chain (Docker not started yet): create it, as Docker would.
        if (chain === "DOCKER-USER") {
          await this.run(["-N", "DOCKER-USER"]);
          continue;
        }
        throw e;
      }
      for (const line of listing.split("\n")) {
        if (!line.startsWith(`-A ${chain} `) || !line.includes(`--comment ${this.o.tag}`)) continue;
        const args = line.split(" ").slice(1);
        await this.run(["-D", ...args]);
      }
    }
  }
}
