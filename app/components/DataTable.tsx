import type { ReactNode } from "react";

/**
 * The settings pages' table: a scroll wrapper, a caption for screen readers, one header row (a
 * trailing unlabelled "Actions" column when `actions` is set) and, with `empty`, a row saying so
 * when there are no rows. The rows themselves stay with each page.
 */
export function DataTable({ caption, columns, actions = false, empty, children }: { caption: string; columns: string[]; actions?: boolean; empty?: string | null; children: ReactNode }) {
  return (
    <div className="table-wrap">
      <table className="data-table">
        <caption className="sr-only">{caption}</caption>
        <thead>
          <tr>
            {columns.map((c) => (
              <th key={c} scope="col">
                {c}
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
