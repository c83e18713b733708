// Shared by every dashboard page: API calls with the token, DOM building, formatting.
// Data from the API is only ever put into the page as text (never as HTML).
"use strict";

const TOKEN_KEY = "pipeline.apiToken";
const ACTIVE = new Set(["PENDING", "RUNNING", "CANCELLING"]);

class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body || {};
  }
}

const api = {
  token() {
    return localStorage.getItem(TOKEN_KEY) || "";
  },
  async fetch(method, path, options = {}) {
    const headers = Object.assign({}, options.headers || {});
    const token = this.token();
    if (token) headers["Authorization"] = "Bearer " + token;
    const response = await fetch(path, {method, headers, body: options.body});
    if (response.status === 401) {
      showTokenForm("This service needs an API token.");
      throw new ApiError(401, "the service needs an API token");
    }
    return response;
  },
  async json(method, path, options) {
    const response = await this.fetch(method, path, options);
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const detail = typeof body.detail === "string" ? body.detail : response.statusText;
      throw new ApiError(response.status, detail, body);
    }
    return body;
  },
  async text(path) {
    const response = await this.fetch("GET", path);
    if (!response.ok) throw new ApiError(response.status, response.statusText);
    return response.text();
  },
};

// el("td", {class: "num"}, "12") -> <td class="num">12</td>
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  return node;
}

function stateBadge(state) {
  return el("span", {class: "state state-" + state.toLowerCase()}, state);
}

function progressBar(fraction, big) {
  const pct = Math.max(0, Math.min(1, fraction || 0)) * 100;
  const fill = el("div", {class: "fill"});
  fill.style.width = pct.toFixed(1) + "%";
  return el("div", {class: "bar" + (big ? " big" : ""), role: "progressbar",
                    "aria-valuemin": 0, "aria-valuemax": 100,
                    "aria-valuenow": pct.toFixed(0)}, fill);
}

const fmt = {
  int(n) {
    return (n || 0).toLocaleString("en-US");
  },
  pct(f) {
    return ((f || 0) * 100).toFixed(f >= 1 ? 0 : 1) + "%";
  },
  duration(s) {
    if (s === null || s === undefined) return "–";
    s = Math.round(s);
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
    return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
  },
  time(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    return d.toLocaleString(undefined, {dateStyle: "short", timeStyle: "medium"});
  },
};

function showMessage(text, kind) {
  const box = document.getElementById("message");
  if (!box) return;
  box.textContent = text || "";
  box.className = "message" + (kind ? " " + kind : "");
  box.hidden = !text;
}

function showTokenForm(note) {
  const form = document.getElementById("token-form");
  form.hidden = false;
  if (note) showMessage(note, "error");
  document.getElementById("token-input").focus();
}

// Run `task` now and every `ms` while `keepGoing()` says so; errors are shown, not thrown.
function every(ms, task, keepGoing) {
  let timer = null;
  const tick = async () => {
    try {
      await task();
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) showMessage(error.message, "error");
    }
    if (!keepGoing || keepGoing()) timer = setTimeout(tick, ms);
  };
  tick();
  return () => clearTimeout(timer);
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("token-form");
  document.getElementById("token-toggle").addEventListener("click", () => {
    form.hidden = !form.hidden;
  });
  document.getElementById("token-input").value = api.token();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    localStorage.setItem(TOKEN_KEY, document.getElementById("token-input").value.trim());
    location.reload();
  });
});
