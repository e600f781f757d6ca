// File-system checks for tests: whether a path is there at all (a dangling link counts).
import { lstat } from "node:fs/promises";

export const exists = (p: string): Promise<boolean> => lstat(p).then(() => true, () => false);
