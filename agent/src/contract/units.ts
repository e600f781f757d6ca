// Sizes as both sides print them for people: decimal units, as Docker shows pull sizes.

/** "1.2 GB", "340 MB", "12 kB". */
export function formatBytes(n: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/** GPU memory as nvidia-smi counts it (MiB) in binary units: "12 GiB", "9.1 GiB", "512 MiB". */
export function formatMiB(mib: number): string {
  if (mib < 1024) return `${Math.round(mib)} MiB`;
  const gib = mib / 1024;
  const text = gib >= 100 || Number.isInteger(Math.round(gib * 10) / 10) ? String(Math.round(gib * 10) / 10) : gib.toFixed(1);
  return `${text} GiB`;
}
