import { Form } from "@remix-run/react";
import { CsrfInput } from "./CsrfInput";

/** A one-button form posting `intent` plus hidden fields, optionally confirmed first (table rows). */
export function RowAction({
  intent,
  fields,
  label,
  ariaLabel,
  confirm,
}: {
  intent: string;
  fields: Record<string, string>;
  label: string;
  ariaLabel: string;
  confirm?: string;
}) {
  return (
    <Form
      method="post"
      className="row-actions"
      onSubmit={(e) => {
        if (confirm && !window.confirm(confirm)) e.preventDefault();
      }}
    >
      <CsrfInput />
      <input type="hidden" name="intent" value={intent} />
      {Object.entries(fields).map(([k, v]) => (
        <input key={k} type="hidden" name={k} value={v} />
      ))}
      <button type="submit" className="button small danger" aria-label={ariaLabel}>
        {label}
      </button>
    </Form>
  );
}
