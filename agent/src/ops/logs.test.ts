import { LineAssembler, LogDemuxer, splitTimestamp } from "./logs";

function frame(type: number, text: string): Buffer {
  const body = Buffer.from(text);
  const head = Buffer.alloc(8);
  head[0] = type;
  head.writeUInt32BE(body.length, 4);
  return Buffer.concat([head, body]);
}

describe("log demultiplexing", () => {
  it("splits stdout and stderr frames even when chunks cut through headers and lines", () => {
    const all = Buffer.concat([frame(1, "2024-05-01T10:00:00.123456789Z hello\n2024-05-01T10:00:01Z wor"), frame(2, "2024-05-01T10:00:02Z oops\n"), frame(1, "ld\n")]);
    const demux = new LogDemuxer();
    const lines = new LineAssembler();
    const out: string[] = [];
    for (let i = 0; i < all.length; i += 5) {
      demux.push(all.subarray(i, i + 5), (stream, data) => lines.push(stream, data, (s, l) => out.push(`${s}:${l}`)));
    }
    expect(out).toEqual(["stdout:2024-05-01T10:00:00.123456789Z hello", "stderr:2024-05-01T10:00:02Z oops", "stdout:2024-05-01T10:00:01Z world"]);
  });

  it("passes unframed (TTY) output through as stdout", () => {
    const out: string[] = [];
    new LogDemuxer().push(Buffer.from("plain text output\n"), (s, d) => out.push(`${s}:${d.toString()}`));
    expect(out).toEqual(["stdout:plain text output\n"]);
  });

  it("splits Docker's timestamp from the text", () => {
    expect(splitTimestamp("2024-05-01T10:00:00.123456789Z hello world")).toEqual({ at: "2024-05-01T10:00:00.123Z", text: "hello world" });
    expect(splitTimestamp("no stamp").text).toBe("no stamp");
  });
});
