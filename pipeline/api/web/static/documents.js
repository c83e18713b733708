// A job's documents: kept or rejected, by stage, reason and a `where` condition, a page at a
// time (GET /jobs/{id}/documents); a click opens one in full with every column
// (GET /jobs/{id}/documents/{doc_id}). The server validates every filter; its 422 message is
// shown as it comes.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const PAGE = 50;
  const jobId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
  const base = "/jobs/" + encodeURIComponent(jobId);
  const $ = (id) => document.getElementById(id);
  let offset = 0;
  let total = 0;
  let shown = 0;

  $("doc-filters").addEventListener("submit", (event) => {
    event.preventDefault();
    offset = 0;
    loadPage();
  });
  $("doc-prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); loadPage(); });
  $("doc-next").addEventListener("click", () => { offset += PAGE; loadPage(); });
  $("doc-close").addEventListener("click", () => $("doc-dialog").close());

  fillChoices();
  loadPage();

  function note(text, kind) {
    const box = $("doc-message");
    box.textContent = text || "";
    box.className = "message" + (kind ? " " + kind : "");
    box.hidden = !text;
  }

  // Stages and reasons from the job's report: suggestions, not limits.
  async function fillChoices() {
    try {
      const summary = await api.json("GET", base + "/report");
      const stages = [...new Set(summary.funnel.map((s) => s.stage))];
      $("doc-stage").replaceChildren(el("option", {value: ""}, "any"),
        ...stages.map((s) => el("option", {value: s}, s)));
      $("doc-reason-list").replaceChildren(
        ...[...new Set(summary.reasons.map((r) => r.reason))].map((r) => el("option", {value: r})));
    } catch (error) {
      // no report yet: the filters still take typed values
    }
  }

  function filters() {
    const params = new URLSearchParams({offset: String(offset), limit: String(PAGE)});
    const fields = {kept: "doc-kept", stage: "doc-stage", reason: "doc-reason", where: "doc-where"};
    for (const [name, id] of Object.entries(fields)) {
      const value = $(id).value.trim();
      if (value) params.set(name, value);
    }
    return params;
  }

  async function loadPage() {
    let page;
    try {
      page = await api.json("GET", base + "/documents?" + filters());
    } catch (error) {
      if (error.status === 401) return;
      $("documents").querySelector("tbody").replaceChildren();
      total = shown = 0;
      renderPager();
      note(error.message, error.status === 404 ? "" : "error");
      return;
    }
    total = page.total;
    shown = page.documents.length;
    $("documents").querySelector("tbody").replaceChildren(...page.documents.map(row));
    note(total ? "" : "No matching documents.");
    renderPager();
  }

  function renderPager() {
    $("doc-page-info").textContent = shown
      ? `${fmt.int(offset + 1)}–${fmt.int(offset + shown)} of ${fmt.int(total)}`
      : (total ? `past the last of ${fmt.int(total)}` : "");
    $("doc-prev").disabled = offset === 0;
    $("doc-next").disabled = offset + shown >= total;
  }

  function outcome(doc) {
    return doc.kept
      ? el("span", {class: "outcome kept"}, "kept")
      : el("span", {class: "outcome rejected"}, `${doc.stage}: `, el("code", {}, doc.reason || ""));
  }

  function row(doc) {
    const tr = el("tr", {class: "clickable", tabindex: 0, dataset: {docId: doc.id ?? ""}},
      el("td", {class: "doc-id"}, doc.id ?? "–"),
      el("td", {}, outcome(doc)),
      el("td", {class: "text"}, doc.url ? el("div", {class: "muted small"}, doc.url) : null,
         doc.snippet));
    tr.addEventListener("click", () => openDocument(doc.id));
    tr.addEventListener("keydown", (event) => { if (event.key === "Enter") openDocument(doc.id); });
    return tr;
  }

  async function openDocument(docId) {
    if (docId === null || docId === undefined) return;
    let doc;
    try {
      doc = await api.json("GET", base + "/documents/" + encodeURIComponent(docId));
    } catch (error) {
      note(error.message, "error");
      return;
    }
    $("doc-title").textContent = doc.id;
    const where = doc.kept ? ["kept"] : ["rejected at ", doc.stage, ": ", el("code", {}, doc.reason || "")];
    const extra = doc.matches > 1 ? ` (${fmt.int(doc.matches)} documents have this id; the first is shown)` : "";
    $("doc-outcome").replaceChildren(el("span", {class: "outcome " + (doc.kept ? "kept" : "rejected")}, ...where),
                                    extra, doc.url ? el("div", {class: "muted"}, doc.url) : null);
    $("doc-text").textContent = doc.text ?? "(no text)";
    $("doc-columns").querySelector("tbody").replaceChildren(
      ...Object.entries(doc.columns).filter(([name]) => name !== "text").map(([name, value]) =>
        el("tr", {dataset: {column: name}}, el("th", {}, name), el("td", {}, show(value)))));
    $("doc-dialog").showModal();
  }

  function show(value) {
    if (value === null || value === undefined) return el("span", {class: "muted"}, "null");
    return typeof value === "object" ? JSON.stringify(value) : String(value);
  }
});
