// Open TCP connections to an app's port on this host (from /proc/net/tcp and tcp6): an app with a
// WebSocket open through the gateway is in use even when no new request arrives.
import { readFile } from "node:fs/promises";

const ESTABLISHED = "01";

/** Counts ESTABLISHED connections with either end on `port` in a /proc/net/tcp(6) table. */
export function establishedOnPort(table: string, port: number): number {
  let n = 0;
  for (const line of table.split("\n").slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 4 || cols[3] !== ESTABLISHED) continue;
    const localPort = parseInt(cols[1]!.split(":")[1] ?? "", 16);
    const remotePort = parseInt(cols[2]!.split(":")[1] ?? "", 16);
    if (localPort === port || remotePort === port) n++;
  }
  return n;
}

export async function openConnections(port: number): Promise<number> {
  let n = 0;
  for (const f of ["/proc/net/tcp", "/proc/net/tcp6"]) n += establishedOnPort(await readFile(f, "utf8").catch(() => ""), port);
  return n;
}
