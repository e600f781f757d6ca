// Reads a server-sent event stream over plain fetch, as a non-browser client would.
export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

export interface SseReader {
  /** Resolves with the next event that matches, waiting up to `timeoutMs`. */
  next(match?: (e: SseEvent) => boolean, timeoutMs?: number): Promise<SseEvent>;
  close(): void;
}

export async function openSse(url: string, headers: Record<string, string> = {}): Promise<SseReader> {
  const ac = new AbortController();
  const res = await fetch(url, { headers: { accept: "text/event-stream", ...headers }, signal: ac.signal });
  if (!res.ok || !res.body) throw new Error(`SSE ${url} answered ${res.status}`);
  const events: SseEvent[] = [];
  let waiter = null as (() => void) | null;
  (async () => {
    const decoder = new TextDecoder();
    let buf = "";
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let idx: number;
        while ((idx = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, idx);
          buf = buf.slice(idx + 2);
          const e: SseEvent = { event: "message", data: "" };
          const data: string[] = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
            else if (line.startsWith("id:")) e.id = line.slice(3).trim();
            else if (line.startsWith("event:")) e.event = line.slice(6).trim();
          }
          e.data = data.join("\n");
          if (data.length || e.event !== "message") events.push(e);
          waiter?.();
        }
      }
    } catch {
      // aborted
    }
  })();
  return {
    async next(match = (e) => e.event === "message", timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const i = events.findIndex(match);
        if (i >= 0) return events.splice(0, i + 1).pop()!;
        const left = deadline - Date.now();
        if (left <= 0) throw new Error("no matching server-sent event in time");
        await new Promise<void>((r) => {
          waiter = r;
          setTimeout(r, Math.min(left, 250));
        });
      }
    },
    close: () => ac.abort(),
  };
}
