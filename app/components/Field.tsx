import type { ReactNode } from "react";

/** What a field hands its control: the id its label points at, and the accessibility wiring. */
export interface ControlProps {
  id: string;
  name: string;
  "aria-invalid"?: true;
  "aria-describedby"?: string;
}

/**
 * One form field: label, control, optional hint and the field's error, wired together (the label
 * names the control, the hint and the error describe it, `invalid` marks the wrapper). The control
 * is the caller's (input, select, textarea), rendered by `children` with the props it must carry.
 * Errors read as "<Label> <message>", as the API's per-field messages are written.
 */
export function Field({
  name,
  label,
  error,
  hint,
  id = `f-${name}`,
  className,
  children,
}: {
  name: string;
  label: string;
  error?: string | null;
  hint?: ReactNode;
  id?: string;
  className?: string;
  children: (control: ControlProps) => ReactNode;
}) {
  const hintId = hint ? `h-${id}` : null;
  const errorId = error ? `e-${id}` : null;
  const describedBy = [hintId, errorId].filter(Boolean).join(" ");
  return (
    <div className={["field", className, error ? "invalid" : null].filter(Boolean).join(" ")}>
      <label htmlFor={id}>{label}</label>
      {children({ id, name, "aria-invalid": error ? true : undefined, "aria-describedby": describedBy || undefined })}
      {hint ? (
        <small id={hintId!} className="hint">
          {hint}
        </small>
      ) : null}
      {error ? (
        <p id={errorId!} className="field-error" data-field={name}>
          {label} {error}
        </p>
      ) : null}
    </div>
  );
}
