import { useNavigate } from "@remix-run/react";
import { useEffect, useRef } from "react";

/** A route-backed modal: it deep-links, the back button closes it, Escape returns to `closeTo`. */
export function RouteDialog({ title, closeTo = "/", children, wide }: { title: string; closeTo?: string; children: React.ReactNode; wide?: boolean }) {
  const ref = useRef<HTMLDialogElement>(null);
  const navigate = useNavigate();
  useEffect(() => {
    // Rendered open on the server (works without JavaScript); upgraded to a modal once hydrated.
    const el = ref.current;
    if (!el || el.matches(":modal")) return;
    el.close();
    el.showModal();
  }, []);
  return (
    <dialog
      ref={ref}
      open
      className={wide ? "dialog wide" : "dialog"}
      aria-labelledby="dialog-title"
      onCancel={(e) => {
        e.preventDefault();
        navigate(closeTo, { preventScrollReset: true });
      }}
    >
      <header className="dialog-head">
        <h2 id="dialog-title">{title}</h2>
        <button type="button" className="icon-button" aria-label="Close" onClick={() => navigate(closeTo, { preventScrollReset: true })}>
          ×
        </button>
      </header>
      <div className="dialog-body">{children}</div>
    </dialog>
  );
}
