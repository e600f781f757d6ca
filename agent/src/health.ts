// A tiny /healthz for the host's supervisor, on loopback only: the agent never listens outside.
import { createServer, type Server } from "node:http";

export interface HealthState {
  version: string;
  hostId: () => string | null;
  connected: () => boolean;
  /** Container log follows running for the console now. */
  logFollows?: () => number;
}

export function startHealthServer(port: number, state: HealthState): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/healthz") {
      res.writeHead(404).end();
      return;
    }
    const body = JSON.stringify({ ok: true, version: state.version, hostId: state.hostId(), connected: state.connected(), ...(state.logFollows ? { logFollows: state.logFollows() } : {}) });
    res.writeHead(200, { "content-type": "application/json" }).end(body);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}
