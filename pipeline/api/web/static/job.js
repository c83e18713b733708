// One job: state, overall progress, the stage funnel, top rejection reasons, throughput over
// time, log tail and history. Refreshes live while the job is active.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const jobId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
  const base = "/jobs/" + encodeURIComponent(jobId);
  let job = null;
  let lastReasons = 0;
  let lastLogs = 0;

  document.getElementById("cancel").addEventListener("click", async () => {
    if (!confirm(`Cancel job ${jobId}? Committed shards are kept; running the spec again resumes.`)) return;
    try {
      job = await api.json("POST", base + "/cancel");
      render(job);
    } catch (error) {
      showMessage(error.message, "error");
    }
  });

  document.getElementById("report-link").addEventListener("click", async () => {
    // The report needs the token, which a plain link cannot send: fetch it, open a copy.
    const opened = window.open("", "_blank");
    try {
      const html = await api.text(base + "/report?format=html");
      const url = URL.createObjectURL(new Blob([html], {type: "text/html"}));
      if (opened) opened.location = url; else location.href = url;
    } catch (error) {
      if (opened) opened.close();
      showMessage("No report yet: " + error.message, "error");
    }
  });

  every(1500, async () => {
    job = await api.json("GET", base);
    render(job);
    const now = Date.now();
    const active = ACTIVE.has(job.state);
    if (!lastReasons || (active && now - lastReasons > 5000) || (!active && lastReasons < finishedAt(job))) {
      lastReasons = now;
      await loadReasons();
    }
    if (!lastLogs || (active && now - lastLogs > 3000) || (!active && lastLogs < finishedAt(job))) {
      lastLogs = now;
      await loadLogs();
    }
    showMessage(job.state === "FAILED" && job.message ? job.message : "",
                job.state === "FAILED" ? "error" : "");
  }, () => !job || ACTIVE.has(job.state));

  function finishedAt(j) {
    return j.finished_at ? new Date(j.finished_at).getTime() + 2000 : 0;
  }

  function render(j) {
    document.title = `${j.name} · curation pipeline`;
    document.getElementById("job-name").textContent = j.id;
    document.getElementById("job-state").replaceChildren(stateBadge(j.state));
    document.getElementById("cancel").hidden = !ACTIVE.has(j.state) || j.state === "CANCELLING";
    const p = j.progress;
    document.getElementById("report-link").disabled = !p || !p.shards.done;

    const facts = [["name", j.name], ["submitted by", j.submitter],
                   ["submitted", fmt.time(j.created_at)], ["started", fmt.time(j.started_at)],
                   ["finished", fmt.time(j.finished_at)], ["output", j.output]];
    if (j.message) facts.push(["message", j.message]);
    document.getElementById("facts").replaceChildren(
      ...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));

    const overall = document.getElementById("overall");
    overall.replaceWith(Object.assign(progressBar(j.fraction, true), {id: "overall"}));
    document.getElementById("overall-text").textContent = p
      ? `${fmt.pct(p.fraction)} · shards ${fmt.int(p.shards.done)} of ${fmt.int(p.shards.planned)}` +
        (p.shards.failed ? ` (${p.shards.failed} failed)` : "") +
        ` · ${fmt.int(p.docs.in)} documents read · ${p.docs_per_s ?? "–"} docs/s` +
        ` · elapsed ${fmt.duration(p.elapsed_s)}` + (p.eta_s !== null ? ` · ETA ${fmt.duration(p.eta_s)}` : "")
      : "waiting for the first progress report";

    renderFunnel(p ? p.stages : []);
    renderThroughput(p ? p.timeline : []);
    document.getElementById("history").replaceChildren(...j.transitions.map((t) =>
      el("li", {}, stateBadge(t.state), " ", fmt.time(t.at), t.message ? " — " + t.message : "")));
    document.getElementById("job-spec").textContent = j.spec;
  }

  function renderFunnel(stages) {
    const top = Math.max(1, ...stages.map((s) => s.in));
    const rows = stages.map((s) => {
      const kept = el("div", {class: "kept", title: `${fmt.int(s.kept)} kept`});
      const rejected = el("div", {class: "rejected", title: `${fmt.int(s.rejected)} rejected`});
      kept.style.width = (100 * s.kept / top).toFixed(2) + "%";
      rejected.style.width = (100 * s.rejected / top).toFixed(2) + "%";
      const done = s.shards_planned ? s.shards_done / s.shards_planned : 0;
      return el("tr", {dataset: {stage: s.stage, step: s.step}},
        el("td", {}, s.step < 0 ? "read" : `${s.step + 1}. ${s.stage}`),
        el("td", {}, progressBar(done), el("span", {class: "muted small"},
           `${fmt.int(s.shards_done)} / ${fmt.int(s.shards_planned)}`)),
        el("td", {class: "num"}, fmt.int(s.in)),
        el("td", {class: "num kept-count"}, fmt.int(s.kept)),
        el("td", {class: "num rejected-count"}, fmt.int(s.rejected)),
        el("td", {class: "wide"}, el("div", {class: "split"}, kept, rejected)),
        el("td", {class: "num"}, s.docs_per_s ?? "–"));
    });
    document.querySelector("#funnel tbody").replaceChildren(...rows);
  }

  function renderThroughput(points) {
    const chart = document.getElementById("throughput");
    const W = 480, H = 180, L = 44, B = 22;
    const nodes = [];
    const top = Math.max(1, ...points.map((p) => p.docs_per_s));
    const end = Math.max(1, ...points.map((p) => p.t));
    const x = (t) => L + (W - L - 8) * t / end;
    const y = (v) => H - B - (H - B - 8) * v / top;
    nodes.push(svg("line", {x1: L, y1: H - B, x2: W - 8, y2: H - B, class: "axis"}));
    nodes.push(svg("line", {x1: L, y1: 8, x2: L, y2: H - B, class: "axis"}));
    const label = (text, attrs) => { const t = svg("text", attrs); t.textContent = text; return t; };
    nodes.push(label(fmt.int(Math.round(top)), {x: L - 4, y: 14, "text-anchor": "end"}));
    nodes.push(label("0", {x: L - 4, y: H - B, "text-anchor": "end"}));
    nodes.push(label(fmt.duration(end), {x: W - 8, y: H - 6, "text-anchor": "end"}));
    if (points.length) {
      const coords = [[0, 0], ...points.map((p) => [p.t, p.docs_per_s])];
      nodes.push(svg("polyline", {points: coords.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" "),
                                  class: "series"}));
    }
    chart.replaceChildren(...nodes);
    document.getElementById("throughput-text").textContent = points.length
      ? "documents finished per second, by time since the job started"
      : "no shard finished yet";
  }

  async function loadReasons() {
    let summary = null;
    try {
      summary = await api.json("GET", base + "/report");
    } catch (error) {
      if (error.status !== 404) throw error;
    }
    const reasons = summary ? summary.reasons.slice(0, 10) : [];
    const top = Math.max(1, ...reasons.map((r) => r.docs));
    document.getElementById("reasons").replaceChildren(...reasons.map((r) => {
      const bar = el("div", {class: "fill"});
      bar.style.width = (100 * r.docs / top).toFixed(1) + "%";
      return el("li", {}, el("span", {class: "reason"}, `${r.stage}: ${r.reason}`),
                el("div", {class: "bar thin"}, bar), el("span", {class: "num"}, fmt.int(r.docs)));
    }));
    document.getElementById("reasons-empty").hidden = reasons.length > 0;
  }

  async function loadLogs() {
    try {
      document.getElementById("logs").textContent = await api.text(base + "/logs?tail=200");
    } catch (error) {
      document.getElementById("logs").textContent = `(log not available: ${error.message})`;
    }
  }
});
