import { memo, useCallback, useEffect, useMemo, useRef, useState } from "react";

/** The browser keeps at most this many lines (shown plus held while paused). */
export const MAX_LINES = 5000;
const INITIAL_TAIL = 500;
/** Above this rate screen readers are not sent every line (aria-live off). */
const FAST_LINES_PER_SECOND = 5;

interface Line {
  seq: number;
  at: string;
  stream: "stdout" | "stderr";
  line: string;
}

interface Batch {
  lines: { at: string; stream: "stdout" | "stderr"; line: string }[];
  dropped?: number;
  ended?: string;
}

type Phase = "connecting" | "live" | "ended" | "error";

function keep<T>(list: T[], max = MAX_LINES): T[] {
  return list.length > max ? list.slice(list.length - max) : list;
}

const time = (at: string) => (at.length >= 19 ? at.slice(11, 19) : at);

function Highlighted({ text, query }: { text: string; query: string }) {
  if (!query) return <>{text}</>;
  const lower = text.toLowerCase();
  const parts: React.ReactNode[] = [];
  let from = 0;
  for (let i = lower.indexOf(query); i >= 0; i = lower.indexOf(query, i + query.length)) {
    if (i > from) parts.push(text.slice(from, i));
    parts.push(<mark key={i}>{text.slice(i, i + query.length)}</mark>);
    from = i + query.length;
  }
  if (from < text.length) parts.push(text.slice(from));
  return <>{parts}</>;
}

const LogRow = memo(function LogRow({ l, query }: { l: Line; query: string }) {
  return (
    <div className="log-line" data-stream={l.stream}>
      <time className="log-time" dateTime={l.at}>
        {time(l.at)}
      </time>
      <span className="log-text">
        <Highlighted text={l.line} query={query} />
      </span>
    </div>
  );
});

/**
 * The app's container log, followed live over the `apps.logFollow` stream: pause (lines keep
 * arriving and are held), search (filters and highlights here, in the browser), download (the
 * buffer as a .log file). Reconnects after the container comes back without repeating lines.
 */
export function LogsPanel({ name, status }: { name: string; status: string }) {
  const [lines, setLines] = useState<Line[]>([]);
  const [held, setHeld] = useState<Line[]>([]);
  const [paused, setPaused] = useState(false);
  const [query, setQuery] = useState("");
  const [phase, setPhase] = useState<Phase>("connecting");
  const [message, setMessage] = useState<string | null>(null);
  const [lost, setLost] = useState(0);
  const [fast, setFast] = useState(false);
  const [epoch, setEpoch] = useState(0);
  const pausedRef = useRef(paused);
  pausedRef.current = paused;
  const viewRef = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const seq = useRef(0);
  /** Where the buffer ends, so a reconnect's repeated tail is skipped. */
  const last = useRef<{ at: string; keys: Set<string> } | null>(null);
  const rate = useRef<number[]>([]);

  const reconnect = useCallback(() => setEpoch((e) => e + 1), []);

  useEffect(() => {
    const input = encodeURIComponent(JSON.stringify({ name, tail: INITIAL_TAIL }));
    const es = new EventSource(`/api/trpc/apps.logFollow?input=${input}`);
    // A reconnect repeats the tail: drop lines up to where the buffer ends.
    let resync = last.current !== null;
    let pending: Line[] = [];
    let frame = 0;
    let countFrom: number | undefined;
    const measure = () => {
      const now = Date.now();
      rate.current = rate.current.filter((t) => now - t < 2000);
      setFast(rate.current.length / 2 > FAST_LINES_PER_SECOND);
    };
    const meter = setInterval(measure, 1000);
    setPhase("connecting");
    setMessage(null);
    const flush = () => {
      frame = 0;
      const batch = pending;
      pending = [];
      if (!batch.length) return;
      if (pausedRef.current) setHeld((h) => keep([...h, ...batch]));
      else setLines((ls) => keep([...ls, ...batch]));
    };
    const accept = (l: Batch["lines"][number]): boolean => {
      const key = `${l.stream}\u0000${l.line}`;
      const end = last.current;
      if (resync && end) {
        if (l.at < end.at || (l.at === end.at && end.keys.has(key))) return false;
        if (l.at > end.at) resync = false;
      }
      if (!end || l.at > end.at) last.current = { at: l.at, keys: new Set([key]) };
      else if (l.at === end.at) end.keys.add(key);
      return true;
    };
    es.addEventListener("connected", () => setPhase("live"));
    es.onmessage = (ev) => {
      let b: Batch;
      try {
        b = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (b.dropped) setLost((n) => n + b.dropped!);
      // The tail that opens the stream is backlog, not a rate: count from half a second after it.
      const now = Date.now();
      countFrom ??= now + 500;
      if (now >= countFrom) {
        rate.current = [...rate.current, ...b.lines.map(() => now)].slice(-200);
        measure();
      }
      for (const l of b.lines) if (accept(l)) pending.push({ ...l, seq: ++seq.current });
      frame ||= requestAnimationFrame(flush);
      if (b.ended) {
        es.close();
        setPhase("ended");
        setMessage(b.ended);
      }
    };
    const fail = (ev: MessageEvent) => {
      es.close();
      let text = "the log stream failed";
      try {
        const d = JSON.parse(ev.data);
        text = d?.message ?? d?.error?.message ?? text;
      } catch {
        // keep the generic text
      }
      setPhase("error");
      setMessage(text);
    };
    es.addEventListener("serialized-error", fail as EventListener);
    es.addEventListener("return", () => {
      es.close();
      setPhase((p) => (p === "live" || p === "connecting" ? "ended" : p));
    });
    es.onerror = () => {
      // The browser retries by itself while the stream is open; say so.
      if (es.readyState !== EventSource.CLOSED) setPhase("connecting");
    };
    return () => {
      if (frame) cancelAnimationFrame(frame);
      clearInterval(meter);
      es.close();
    };
  }, [name, epoch]);

  // A follow that ended (container stopped or replaced) or failed starts again once the app runs.
  useEffect(() => {
    if ((phase !== "ended" && phase !== "error") || status === "STOPPED") return;
    const t = setTimeout(reconnect, phase === "ended" ? 1000 : 5000);
    return () => clearTimeout(t);
  }, [phase, status, reconnect, epoch]);

  useEffect(() => {
    const v = viewRef.current;
    if (v && stick.current && !paused) v.scrollTop = v.scrollHeight;
  }, [lines, paused]);

  const togglePause = () => {
    if (paused) {
      setLines((ls) => keep([...ls, ...held]));
      setHeld([]);
      stick.current = true;
    }
    setPaused(!paused);
  };

  const download = () => {
    const text = [...lines, ...held].map((l) => `${l.at} ${l.stream} ${l.line}`).join("\n") + "\n";
    const url = URL.createObjectURL(new Blob([text], { type: "text/plain;charset=utf-8" }));
    const a = document.createElement("a");
    a.href = url;
    a.download = `${name}-${new Date().toISOString().replace(/[:.]/g, "-")}.log`;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };

  const q = query.toLowerCase();
  const shown = useMemo(() => (q ? lines.filter((l) => l.line.toLowerCase().includes(q)) : lines), [lines, q]);
  const stateText =
    phase === "live" ? (paused ? `paused · ${held.length} new line${held.length === 1 ? "" : "s"} held` : "following") : phase === "connecting" ? "connecting…" : (message ?? phase);

  return (
    <section className="panel" aria-labelledby="logs-title">
      <div className="panel-head logs-head">
        <h2 id="logs-title">Logs</h2>
        <span className={`live${phase === "live" && !paused ? " on" : ""}`} data-log-state={phase} role="status">
          {stateText}
        </span>
      </div>
      {phase === "error" || phase === "ended" ? (
        <p className={phase === "error" ? "form-error" : "hint"} role={phase === "error" ? "alert" : undefined}>
          {message}{" "}
          <button type="button" className="button secondary small" onClick={reconnect}>
            Reconnect
          </button>
        </p>
      ) : null}
      <div className="log-toolbar">
        <div className="field log-search">
          <label htmlFor="log-search">Search</label>
          <input id="log-search" type="search" value={query} onChange={(e) => setQuery(e.target.value)} placeholder="Filter lines" autoComplete="off" />
        </div>
        <div className="log-actions">
          <button type="button" className="button secondary" aria-pressed={paused} onClick={togglePause}>
            {paused ? "Resume" : "Pause"}
          </button>
          <button type="button" className="button secondary" onClick={download} disabled={!lines.length && !held.length} aria-label="Download the log as a file">
            Download
          </button>
          <button
            type="button"
            className="button secondary"
            onClick={() => {
              setLines([]);
              setHeld([]);
              setLost(0);
            }}
            aria-label="Clear the log view"
          >
            Clear
          </button>
        </div>
      </div>
      <p className="hint log-count" aria-live="polite">
        {query ? `${shown.length} of ${lines.length} lines match` : `${lines.length} lines`}
        {lines.length + held.length >= MAX_LINES ? ` (the last ${MAX_LINES} are kept)` : ""}
        {lost ? ` · ${lost} lines skipped while the browser was behind` : ""}
      </p>
      <div
        ref={viewRef}
        className="log-view"
        role="log"
        aria-label={`Log output of ${name}`}
        aria-live={fast || paused ? "off" : "polite"}
        tabIndex={0}
        onScroll={(e) => {
          const v = e.currentTarget;
          stick.current = v.scrollHeight - v.scrollTop - v.clientHeight < 24;
        }}
      >
        {shown.map((l) => (
          <LogRow key={l.seq} l={l} query={q} />
        ))}
        {!lines.length ? <div className="log-empty">{phase === "connecting" ? "Waiting for the agent…" : "No output yet."}</div> : null}
      </div>
    </section>
  );
}
