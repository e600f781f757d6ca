import { createServer as createHttp } from "node:http";
import { createServer, type AddressInfo, type Server } from "node:net";
import { probePort } from "./probe";

const listen = (s: Server) => new Promise<number>((r) => s.listen(0, "127.0.0.1", () => r((s.address() as AddressInfo).port)));

describe("probePort", () => {
  it("is reachable when HTTP answers (any status)", async () => {
    const server = createHttp((_req, res) => res.writeHead(404).end("nope"));
    const port = await listen(server);
    expect(await probePort(port)).toMatchObject({ tcp: true, reachable: true, httpStatus: 404 });
    server.close();
  });

  it("is not reachable when a connection is accepted but closed without an answer (docker-proxy)", async () => {
    const server = createServer((socket) => socket.destroy());
    const port = await listen(server);
    expect(await probePort(port)).toMatchObject({ tcp: true, reachable: false });
    server.close();
  });

  it("is not reachable on a closed port", async () => {
    const server = createServer();
    const port = await listen(server);
    server.close();
    await new Promise((r) => setTimeout(r, 20));
    expect(await probePort(port)).toMatchObject({ tcp: false, reachable: false });
  });
});
