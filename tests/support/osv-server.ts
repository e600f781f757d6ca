// A local OSV-compatible API on loopback, fed from real OSV JSON records (tests/fixtures/osv):
// `POST /v1/querybatch` matches each package version against the records' affected `versions` and
// ECOSYSTEM / SEMVER ranges (PEP 440 ordering for PyPI, semver for npm), as api.osv.dev does;
// `GET /v1/vulns/<id>` answers a record. Tests add records while it runs and can take it down.
import { readdirSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { compare as pep440Compare } from "@renovatebot/pep440";
import semver from "semver";

export const OSV_FIXTURES = join(import.meta.dirname, "../fixtures/osv");

interface Rec {
  id: string;
  modified?: string;
  affected?: { package?: { ecosystem?: string; name?: string }; versions?: string[]; ranges?: { type: string; events?: Record<string, string>[] }[] }[];
}

export interface OsvServer {
  url: string;
  /** Requests served, by path (`/v1/querybatch`, `/v1/vulns/<id>`), 503s included. */
  requests: string[];
  add(record: object): void;
  /** While down, every request is answered 503. */
  setDown(down: boolean): void;
  close(): Promise<void>;
}

export function osvFixture(id: string): Rec {
  return JSON.parse(readFileSync(join(OSV_FIXTURES, `${id}.json`), "utf8")) as Rec;
}

const normalize = (eco: string, name: string) => (eco === "PyPI" ? name.toLowerCase().replace(/[-_.]+/g, "-") : name);

function cmp(eco: string, a: string, b: string): number {
  if (eco === "npm") return semver.compare(semver.coerce(a, { includePrerelease: true }) ?? a, semver.coerce(b, { includePrerelease: true }) ?? b);
  return pep440Compare(a, b);
}

export function affects(rec: Rec, eco: string, name: string, version: string): boolean {
  for (const a of rec.affected ?? []) {
    if (a.package?.ecosystem !== eco || normalize(eco, a.package?.name ?? "") !== normalize(eco, name)) continue;
    if (a.versions?.includes(version)) return true;
    for (const r of a.ranges ?? []) {
      if (r.type !== "ECOSYSTEM" && r.type !== "SEMVER") continue;
      let inside = false;
      for (const e of r.events ?? []) {
        if (e.introduced !== undefined && (e.introduced === "0" || cmp(eco, version, e.introduced) >= 0)) inside = true;
        if (e.fixed !== undefined && cmp(eco, version, e.fixed) >= 0) inside = false;
        if (e.last_affected !== undefined && cmp(eco, version, e.last_affected) > 0) inside = false;
      }
      if (inside) return true;
    }
  }
  return false;
}

export async function startOsvServer(ids: string[] = readdirSync(OSV_FIXTURES).map((f) => f.replace(/\.json$/, ""))): Promise<OsvServer> {
  const records = new Map<string, Rec>(ids.map((id) => [id, osvFixture(id)]));
  const requests: string[] = [];
  let down = false;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "").split("?")[0]!;
    requests.push(path);
    const answer = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (down) return answer(503, { code: 14, message: "unavailable" });
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      if (req.method === "POST" && path === "/v1/querybatch") {
        let q: { queries?: { package?: { ecosystem?: string; name?: string }; version?: string }[] };
        try {
          q = JSON.parse(body);
        } catch {
          return answer(400, { code: 3, message: "invalid JSON" });
        }
        if (!Array.isArray(q.queries) || q.queries.length > 1000) return answer(400, { code: 3, message: "too many queries" });
        const results = q.queries.map((one) => {
          const eco = one.package?.ecosystem ?? "";
          const vulns = [...records.values()]
            .filter((r) => affects(r, eco, one.package?.name ?? "", one.version ?? ""))
            .map((r) => ({ id: r.id, modified: r.modified }));
          return vulns.length ? { vulns } : {};
        });
        return answer(200, { results });
      }
      const m = /^\/v1\/vulns\/([A-Za-z0-9._-]+)$/.exec(path);
      if (req.method === "GET" && m) {
        const rec = records.get(decodeURIComponent(m[1]!));
        return rec ? answer(200, rec) : answer(404, { code: 5, message: "Bug not found." });
      }
      answer(404, { code: 5, message: "not found" });
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    requests,
    add: (rec) => void records.set((rec as Rec).id, rec as Rec),
    setDown: (d) => void (down = d),
    close: () => new Promise((r) => server.close(() => r())),
  };
}
