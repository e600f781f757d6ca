import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";
import { Field } from "./Field";

const render = (props: Partial<Parameters<typeof Field>[0]> = {}) =>
  renderToStaticMarkup(createElement(Field, { name: "port", label: "Port", children: (p) => createElement("input", p), ...props }));

describe("Field", () => {
  it("points the label at the control and marks nothing invalid when there is no error", () => {
    const html = render();
    expect(html).toContain('<label for="f-port">Port</label>');
    expect(html).toContain('<input id="f-port" name="port"/>');
    expect(html).not.toContain("invalid");
    expect(html).not.toContain("aria-describedby");
  });

  it("describes the control by its hint and its error, and reads the error as '<Label> <message>'", () => {
    const html = render({ hint: "1024–65535", error: "is already used by app comfy on this host", id: "n-port" });
    expect(html).toContain('class="field invalid"');
    expect(html).toContain('<input id="n-port" name="port" aria-invalid="true" aria-describedby="h-n-port e-n-port"/>');
    expect(html).toContain('<small id="h-n-port" class="hint">1024–65535</small>');
    expect(html).toContain('<p id="e-n-port" class="field-error" data-field="port">Port is already used by app comfy on this host</p>');
  });
});
