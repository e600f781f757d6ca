// One way to create a key file once: written to a temporary name (mode 0600), then linked into
// place. link() refuses to replace, so when two console processes start at once the first key wins
// for both, and a key never changes under a running process.
import { linkSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";

/** The file's text; when it does not exist yet, `make()` is written there first. */
export function readOrCreateKeyFile(path: string, make: () => string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, make(), { mode: 0o600 });
  try {
    linkSync(tmp, path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  } finally {
    unlinkSync(tmp);
  }
  return readFileSync(path, "utf8");
}
