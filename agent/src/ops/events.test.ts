import { JsonLineSplitter, parseDockerEvent } from "./events";

const attrs = { "dcc.app": "web", "dcc.host": "h1", "dcc.managed": "true", "dcc.app-id": "a1", image: "x", name: "web_app_1" };

describe("parseDockerEvent", () => {
  it("maps a die event with its exit code", () => {
    const e = parseDockerEvent(
      { Type: "container", Action: "die", Actor: { ID: "c1", Attributes: { ...attrs, exitCode: "137" } }, time: 1700000000, timeNano: 1700000000123456789 },
      "h1",
    );
    expect(e).toEqual({ action: "die", app: "web", containerId: "c1", oneoff: false, exitCode: 137, time: 1700000000123 });
  });

  it("maps kill with its signal, health status, and marks one-off containers", () => {
    expect(parseDockerEvent({ Type: "container", Action: "kill", Actor: { ID: "c1", Attributes: { ...attrs, signal: "9" } } }, "h1")).toMatchObject({ action: "kill", signal: "9" });
    expect(parseDockerEvent({ Type: "container", Action: "health_status: unhealthy", Actor: { ID: "c1", Attributes: attrs } }, "h1")).toMatchObject({ action: "health", healthy: false });
    expect(parseDockerEvent({ Type: "container", Action: "health_status: healthy", Actor: { ID: "c1", Attributes: attrs } }, "h1")).toMatchObject({ action: "health", healthy: true });
    expect(parseDockerEvent({ Type: "container", Action: "start", Actor: { ID: "c2", Attributes: { ...attrs, "com.docker.compose.oneoff": "True" } } }, "h1")).toMatchObject({ oneoff: true });
  });

  it("ignores other hosts, unmanaged containers and irrelevant actions", () => {
    expect(parseDockerEvent({ Type: "container", Action: "die", Actor: { ID: "c1", Attributes: attrs } }, "h2")).toBeNull();
    expect(parseDockerEvent({ Type: "container", Action: "die", Actor: { ID: "c1", Attributes: { ...attrs, "dcc.managed": "false" } } }, "h1")).toBeNull();
    expect(parseDockerEvent({ Type: "container", Action: "exec_start: sh", Actor: { ID: "c1", Attributes: attrs } }, "h1")).toBeNull();
    expect(parseDockerEvent({ Type: "network", Action: "connect", Actor: { ID: "n", Attributes: attrs } }, "h1")).toBeNull();
  });
});

describe("JsonLineSplitter", () => {
  it("reassembles objects split across chunks and skips bad lines", () => {
    const out: unknown[] = [];
    const s = new JsonLineSplitter();
    s.push('{"a":1}\n{"b":', (v) => out.push(v));
    s.push('2}\nnot json\n{"c":3}\n', (v) => out.push(v));
    expect(out).toEqual([{ a: 1 }, { b: 2 }, { c: 3 }]);
  });
});

describe("EventFollower", () => {
  it("reconnects when the stream ends (Docker restarted) and resynchronises", async () => {
    const { PassThrough } = await import("node:stream");
    const { EventFollower } = await import("./events");
    const streams: InstanceType<typeof PassThrough>[] = [];
    const calls: unknown[] = [];
    const fakeDocker = {
      getEvents: async (opts: unknown) => {
        calls.push(opts);
        if (calls.length === 2) throw new Error("connect ENOENT /var/run/docker.sock");
        const s = new PassThrough();
        streams.push(s);
        return s;
      },
    };
    const events: string[] = [];
    let connected = 0;
    const follower = new EventFollower({
      docker: fakeDocker as never,
      hostId: "h1",
      onEvent: (e) => events.push(`${e.action}:${e.containerId}`),
      onConnected: () => connected++,
    });
    const line = (action: string, id: string) => `${JSON.stringify({ Type: "container", Action: action, Actor: { ID: id, Attributes: attrs } })}\n`;
    follower.start();
    await vi.waitFor(() => expect(connected).toBe(1));
    expect(calls[0]).toMatchObject({ filters: { type: ["container"], label: ["dcc.managed=true", "dcc.host=h1"] } });
    streams[0]!.write(line("die", "c1"));
    streams[0]!.end();
    // first retry fails (daemon still down), the next one connects
    await vi.waitFor(() => expect(connected).toBe(2), { timeout: 3000 });
    streams[1]!.write(line("start", "c2"));
    await vi.waitFor(() => expect(events).toEqual(["die:c1", "start:c2"]));
    follower.stop();
    expect(calls.length).toBe(3);
  });
});
