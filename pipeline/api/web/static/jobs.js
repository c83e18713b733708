// The job list: state, progress bar and counts per job; refreshed every few seconds.
"use strict";

const PAGE = 25;

document.addEventListener("DOMContentLoaded", () => {
  const params = new URLSearchParams(location.search);
  const filter = document.getElementById("state-filter");
  filter.value = params.get("state") || "";
  let offset = Math.max(0, parseInt(params.get("offset") || "0", 10) || 0);

  const go = (changes) => {
    const next = new URLSearchParams(location.search);
    for (const [key, value] of Object.entries(changes)) {
      if (value) next.set(key, value); else next.delete(key);
    }
    location.search = next.toString();
  };
  filter.addEventListener("change", () => go({state: filter.value, offset: ""}));
  document.getElementById("prev").addEventListener("click",
    () => go({offset: String(Math.max(0, offset - PAGE))}));
  document.getElementById("next").addEventListener("click",
    () => go({offset: String(offset + PAGE)}));

  every(2000, async () => {
    const query = new URLSearchParams({limit: PAGE, offset});
    if (filter.value) query.append("state", filter.value);
    const page = await api.json("GET", "/jobs?" + query);
    render(page);
    showMessage("");
  });

  function render(page) {
    const body = document.querySelector("#jobs tbody");
    body.replaceChildren(...page.jobs.map(row));
    document.getElementById("empty").hidden = page.total > 0;
    const last = Math.min(page.offset + page.jobs.length, page.total);
    document.getElementById("page-info").textContent =
      page.total ? `${page.offset + 1}–${last} of ${page.total}` : "";
    document.getElementById("prev").disabled = page.offset === 0;
    document.getElementById("next").disabled = last >= page.total;
  }

  function row(job) {
    const link = el("a", {href: "/ui/jobs/" + encodeURIComponent(job.id)}, job.id);
    return el("tr", {dataset: {jobId: job.id, state: job.state}},
      el("td", {}, link, el("div", {class: "muted small"}, job.name)),
      el("td", {}, stateBadge(job.state)),
      el("td", {class: "wide"}, progressBar(job.fraction),
         el("span", {class: "muted small"}, fmt.pct(job.fraction))),
      el("td", {class: "num"}, fmt.int(job.docs.in)),
      el("td", {class: "num"}, fmt.int(job.docs.kept)),
      el("td", {class: "num"}, fmt.int(job.docs.rejected)),
      el("td", {}, fmt.time(job.created_at)),
      el("td", {}, job.submitter));
  }
});
