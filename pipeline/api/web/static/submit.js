// The submit page: a YAML editor with line numbers; validation errors are listed with their
// line, marked in the gutter, and a click selects the line.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const editor = document.getElementById("spec");
  const gutter = document.getElementById("gutter");
  let errorLines = new Set();

  const drawGutter = () => {
    const count = editor.value.split("\n").length;
    gutter.replaceChildren(...Array.from({length: count}, (_, i) =>
      el("span", {class: errorLines.has(i + 1) ? "err" : null}, String(i + 1) + "\n")));
    gutter.scrollTop = editor.scrollTop;
  };
  editor.addEventListener("input", drawGutter);
  editor.addEventListener("scroll", () => { gutter.scrollTop = editor.scrollTop; });
  drawGutter();

  const selectLine = (line) => {
    const lines = editor.value.split("\n");
    const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
    editor.focus();
    editor.setSelectionRange(start, start + (lines[line - 1] || "").length);
  };

  document.getElementById("submit-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = document.getElementById("submit");
    button.disabled = true;
    const query = new URLSearchParams();
    const baseDir = document.getElementById("base-dir").value.trim();
    const submitter = document.getElementById("submitter").value.trim();
    if (baseDir) query.set("base_dir", baseDir);
    if (submitter) query.set("submitter", submitter);
    try {
      const job = await api.json("POST", "/jobs" + (query.size ? "?" + query : ""),
                                 {body: editor.value, headers: {"Content-Type": "application/yaml"}});
      location.href = "/ui/jobs/" + encodeURIComponent(job.id);
    } catch (error) {
      showErrors(error);
    } finally {
      button.disabled = false;
    }
  });

  function showErrors(error) {
    const errors = (error.body && Array.isArray(error.body.errors) && error.body.errors.length)
      ? error.body.errors : [{line: null, message: error.message}];
    errorLines = new Set(errors.filter((e) => e.line).map((e) => e.line));
    document.getElementById("error-list").replaceChildren(...errors.map((e) => {
      const item = el("li", {class: e.line ? "clickable" : null, dataset: {line: e.line || ""}},
                      e.message);
      if (e.line) item.addEventListener("click", () => selectLine(e.line));
      return item;
    }));
    document.getElementById("errors").hidden = false;
    drawGutter();
  }
});
