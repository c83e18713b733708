// What-if sliders on the report's histograms: every threshold the report marks on a column
// (its `distributions`) gets a slider; moving one asks GET /jobs/{id}/whatif with every moved
// threshold and shows, per step, what the job would keep instead (documents and words).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const jobId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
  const base = "/jobs/" + encodeURIComponent(jobId);
  const $ = (id) => document.getElementById(id);
  const W = 600, H = 150, L = 8, R = 8, B = 20;
  const sliders = [];  // {stage, option, asRun, input, line, x}
  let asked = 0;  // answers to older questions are dropped
  let timer = null;

  $("whatif-reset").addEventListener("click", () => {
    for (const s of sliders) {
      s.input.value = String(s.asRun);
      moved(s, false);
    }
    ask();
  });

  let loaded = false;
  every(5000, async () => {
    let summary;
    try {
      summary = await api.json("GET", base + "/report");
    } catch (error) {
      if (error.status === 404) return;  // no shard committed yet: ask again
      throw error;
    }
    loaded = true;
    render(summary.distributions || {});
  }, () => !loaded);

  function render(distributions) {
    const charts = Object.entries(distributions)
      .filter(([, dist]) => dist.thresholds && dist.thresholds.length)
      .map(([column, dist]) => chart(column, dist));
    $("whatif-charts").replaceChildren(...charts);
    $("whatif-empty").hidden = charts.length > 0;
  }

  function chart(column, dist) {
    const lo = Math.min(dist.lo, ...dist.thresholds.map((t) => t.value));
    const hi = Math.max(dist.hi, ...dist.thresholds.map((t) => t.value));
    const x = (v) => L + (W - L - R) * (hi > lo ? (v - lo) / (hi - lo) : 0.5);
    const top = Math.max(1, ...dist.bins.map((b) => b.kept + b.rejected));
    const y = (n) => (H - B - 6) * n / top;
    const nodes = [svg("line", {x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis"})];
    for (const b of dist.bins) {
      const left = x(b.lo), width = Math.max(1, x(b.hi) - x(b.lo) - 1);
      const kept = y(b.kept), rejected = y(b.rejected);
      const title = `${b.lo.toPrecision(3)} – ${b.hi.toPrecision(3)}: ${fmt.int(b.kept)} kept, ${fmt.int(b.rejected)} rejected`;
      for (const [cls, height, bottom] of [["kept", kept, 0], ["rejected", rejected, kept]]) {
        const bar = svg("rect", {x: left, width, y: H - B - bottom - height, height, class: cls});
        bar.append(Object.assign(svg("title", {}), {textContent: title}));
        nodes.push(bar);
      }
    }
    const label = (text, attrs) => Object.assign(svg("text", attrs), {textContent: text});
    nodes.push(label(String(+dist.lo.toPrecision(4)), {x: L, y: H - 4}));
    nodes.push(label(String(+dist.hi.toPrecision(4)), {x: W - R, y: H - 4, "text-anchor": "end"}));
    const picture = svg("svg", {viewBox: `0 0 ${W} ${H}`, class: "chart histogram", role: "img",
                                "aria-label": `${column}: kept and rejected documents`});
    picture.replaceChildren(...nodes);
    const controls = dist.thresholds.map((mark) => {
      const line = svg("line", {y1: 4, y2: H - B, class: "threshold"});
      picture.append(line);
      const integer = Number.isInteger(mark.value) && Number.isInteger(dist.lo) && hi - lo >= 20;
      const input = el("input", {type: "range", min: lo, max: hi, value: mark.value,
                                 step: integer ? 1 : "any",
                                 "aria-label": `${mark.stage}.${mark.option}`});
      const shown = el("output", {}, String(mark.value));
      const s = {stage: mark.stage, option: mark.option, asRun: mark.value, integer, input, line, x, shown};
      sliders.push(s);
      input.addEventListener("input", () => moved(s, true));
      moved(s, false);
      return el("label", {class: "slider", dataset: {stage: mark.stage, option: mark.option}},
                el("span", {}, `${mark.stage}.${mark.option}`), input, shown,
                el("span", {class: "muted small"}, ` (as run: ${mark.value})`));
    });
    return el("div", {class: "whatif-chart", dataset: {column}}, el("h3", {}, column), picture,
              ...controls);
  }

  function value(s) {
    const v = Number(s.input.value);
    return s.integer ? Math.round(v) : +v.toPrecision(4);
  }

  function moved(s, askSoon) {
    const v = value(s);
    s.shown.textContent = String(v);
    s.line.setAttribute("x1", s.x(v));
    s.line.setAttribute("x2", s.x(v));
    s.line.classList.toggle("changed", v !== s.asRun);
    if (askSoon) {
      clearTimeout(timer);
      timer = setTimeout(ask, 250);
    }
  }

  async function ask() {
    const params = new URLSearchParams();
    for (const s of sliders) {
      if (value(s) !== s.asRun) params.append("set", `${s.stage}.${s.option}=${value(s)}`);
    }
    const question = ++asked;
    if (![...params].length) {
      $("whatif-result").hidden = true;
      $("whatif-message").hidden = true;
      return;
    }
    let answer;
    try {
      answer = await api.json("GET", base + "/whatif?" + params);
    } catch (error) {
      if (question !== asked) return;
      $("whatif-message").textContent = error.message;
      $("whatif-message").className = "message error";
      $("whatif-message").hidden = false;
      $("whatif-result").hidden = true;
      return;
    }
    if (question !== asked) return;
    $("whatif-message").hidden = true;
    show(answer);
  }

  function show(answer) {
    const before = answer.kept.before, after = answer.kept.after;
    $("whatif-kept-before").textContent = fmt.int(before.docs);
    $("whatif-kept-after").textContent = fmt.int(after.docs);
    $("whatif-words-before").textContent = fmt.int(before.words);
    $("whatif-words-after").textContent = fmt.int(after.words);
    $("whatif-unsure").textContent = after.unsure
      ? `; ${fmt.int(after.unsure)} documents (${fmt.int(after.unsure_words)} words) unsure without a re-run`
      : "";
    $("whatif-funnel").querySelector("tbody").replaceChildren(...answer.funnel.map((f) =>
      el("tr", {dataset: {stage: f.stage}, class: f.before.kept !== f.after.kept ? "changed" : null},
        el("td", {}, f.step < 0 ? f.stage : `${f.step + 1}. ${f.stage}`),
        el("td", {class: "num"}, fmt.int(f.after.in)),
        el("td", {class: "num"}, fmt.int(f.before.kept)),
        el("td", {class: "num kept-now"}, fmt.int(f.after.kept)),
        el("td", {class: "num"}, fmt.int(f.before.words_kept)),
        el("td", {class: "num"}, fmt.int(f.after.words_kept)),
        el("td", {class: "num"}, fmt.int(f.after.unsure)))));
    $("whatif-notes").textContent = answer.notes.join(" ");
    $("whatif-result").hidden = false;
  }
});
