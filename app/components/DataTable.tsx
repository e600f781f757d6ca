import type { ReactNode } from "react";

/** A column heading: its text, or `{ hidden }` for a column named for screen readers only. */
export type Column = string | { hidden: string };

/**
 * The console's data table: a scroll wrapper, a caption for screen readers, one header row (a
 * trailing unlabelled "Actions" column when `actions` is set) and, with `empty`, a row saying so
 * when there are no rows. The rows themselves stay with each page.
 */
export function DataTable({
  caption,
  columns,
  actions = false,
  empty,
  className,
  children,
}: {
  caption: string;
  columns: Column[];
  actions?: boolean;
  empty?: string | null;
  className?: string;
  children: ReactNode;
}) {
  return (
    <div className="table-wrap">
      <table className={className ? `data-table ${className}` : "data-table"}>
        <caption className="sr-only">{caption}</caption>
        <thead>
          <tr>
            {columns.map((c) => (
              <th key={typeof c === "string" ? c : c.hidden} scope="col">
                {typeof c === "string" ? c : <span className="sr-only">{c.hidden}</span>}
              </th>
            ))}
            {actions ? (
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            ) : null}
          </tr>
        </thead>
        <tbody>
          {empty ? (
            <tr>
              <td colSpan={columns.length + (actions ? 1 : 0)} className="muted">
                {empty}
              </td>
            </tr>
          ) : null}
          {children}
        </tbody>
      </table>
    </div>
  );
}
