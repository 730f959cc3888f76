// The export dialog (from a report page or a drill-down) and the export center, whose
// rows follow the server's pushed progress (Server-Sent Events, fed by NOTIFY).

import { api, query, ApiError } from "./api.js";
import { el } from "./charts.js";
import { formatDateTime, formatNumber } from "./format.js";

const FILTER_LABELS = {
  fromDate: "From", toDate: "To (exclusive)", currency: "Currency", status: "Status", method: "Method",
  customerId: "Customer", projectId: "Project", userId: "User", overdueOnly: "Overdue only", asOf: "As of",
  cycleTimeBucket: "Cycle time", settlementTimeBucket: "Settlement time",
  approvalTimeBucket: "Approval time", amountBucket: "Amount range",
};

// A filter's value as a reader wants it: instants in the org's zone (with the exact
// value), bucket keys with thousands separators and their unit.
function shownValue(key, value, tz) {
  if (key.endsWith("Date") || key === "asOf") return `${formatDateTime(value, tz)} (${value})`;
  if (key.endsWith("Bucket")) {
    const range = String(value).replace(/\d+/g, (n) => formatNumber(Number(n))).replace("-", " – ");
    return key === "amountBucket" ? `${range} (whole units of the currency)` : `${range} days`;
  }
  return String(value);
}

export function openExportDialog(ctx, report, filters, label, note) {
  const { boot, me } = ctx;
  const dialog = document.getElementById("export-dialog");
  const tz = me.organization.timezone;
  const error = el("p", { class: "state error", role: "alert", hidden: true });
  const format = el("select", { name: "format", id: "export-format" },
    boot.exportFormats.map((f) => el("option", { value: f, text: f.toUpperCase() })));
  const fileName = el("input", { name: "fileName", id: "export-file-name", maxlength: "255", placeholder: "Default: report and date" });
  const rows = Object.entries(filters).map(([key, value]) => el("div", { class: "kv" },
    el("dt", { text: FILTER_LABELS[key] || key }),
    el("dd", { "data-filter": key, "data-value": String(value), text: shownValue(key, value, tz) })));
  const submit = el("button", { type: "submit", text: "Create export" });
  const form = el("form", { method: "dialog", class: "export-form" },
    el("h2", { id: "export-dialog-title", text: `Export ${report.title.replace(/\.$/, "").toLowerCase()}` }),
    el("p", { class: "muted", text: `Rows: ${label}` }),
    note ? el("p", { class: "state empty", text: note }) : null,
    rows.length ? el("dl", { class: "filters-list" }, rows) : el("p", { text: "No filters: every row of the report." }),
    el("label", { class: "field", for: "export-format" }, el("span", { text: "Format" }), format),
    el("label", { class: "field", for: "export-file-name" }, el("span", { text: "File name (optional)" }), fileName),
    error,
    el("div", { class: "actions" },
      el("button", { type: "button", class: "secondary", onclick: () => dialog.close(), text: "Cancel" }), submit));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    error.hidden = true;
    try {
      const body = { reportType: report.type, format: format.value, filters };
      if (fileName.value.trim()) body.fileName = fileName.value.trim();
      const created = await api("/v1/reports/export", {
        method: "POST", body, headers: { "Idempotency-Key": crypto.randomUUID() },
      });
      dialog.close();
      ctx.toast("Export queued. It runs in the background; you will be told when it is ready.", "info", { href: "/exports", text: "Open Exports" });
      ctx.live.emitLocal({ kind: "export", id: created.jobId, status: created.status });
    } catch (err) {
      error.textContent = err instanceof ApiError ? err.message : String(err);
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
  dialog.replaceChildren(form);
  dialog.showModal();
  format.focus();
}

function reportTitle(ctx, type) {
  const report = ctx.boot.reports.find((r) => r.type === type);
  return report ? report.title.split(":")[0] : type;
}

function progressOf(job) {
  if (job.status === "completed") return 100;
  if (!job.totalRows) return 0;
  return Math.min(99, Math.floor((job.processedRows * 100) / job.totalRows));
}

export async function renderExports(ctx) {
  const { main, me, live } = ctx;
  const tz = me.organization.timezone;
  const canExport = me.permissions.includes("reports.export_reports");
  const body = el("tbody");
  const status = el("div", { "aria-live": "polite" }, el("p", { class: "state loading", role: "status", text: "Loading your exports…" }));
  main.replaceChildren(
    el("h1", { text: "Exports" }),
    el("p", { class: "muted", text: "Your own export jobs, newest first. Progress updates live; files are checked with their SHA-256." }),
    status);
  const jobs = new Map();

  function row(job) {
    const pct = progressOf(job);
    const actions = el("td", { class: "actions" });
    if (job.status === "completed" && canExport) {
      actions.append(el("a", { class: "button", href: `/v1/reports/export/${job.id}/download`, download: job.fileName, "data-action": "download" }, "Download"));
    }
    if ((job.status === "pending" || job.status === "processing") && canExport) {
      actions.append(el("button", { type: "button", class: "secondary", "data-action": "cancel", onclick: () => cancel(job.id) }, "Cancel"));
    }
    return el("tr", { "data-job": job.id, "data-status": job.status },
      el("td", { text: formatDateTime(job.createdAt, tz) }),
      el("td", {}, reportTitle(ctx, job.reportType), el("br"), el("small", { class: "muted", text: job.fileName })),
      el("td", { text: job.format.toUpperCase() }),
      el("td", { class: `status ${job.status}`, text: job.status === "failed" && job.errorMessage ? `failed: ${job.errorMessage}` : job.status }),
      el("td", {},
        el("div", { class: "progress", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(pct), "aria-label": `Progress of ${job.fileName}` },
          el("span", { style: `width:${pct}%` })),
        el("small", { "data-progress": String(pct), text: `${pct} % · ${formatNumber(job.processedRows)}${job.totalRows !== null ? ` of ${formatNumber(job.totalRows)}` : ""} rows` })),
      el("td", { class: "checksum" }, job.checksumSha256
        ? el("code", { "data-checksum": job.checksumSha256, title: job.checksumSha256, text: job.checksumSha256 })
        : el("span", { class: "muted", text: "—" })),
      actions);
  }

  function draw() {
    const list = [...jobs.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    if (!list.length) {
      status.replaceChildren(el("p", { class: "state empty", text: "No exports yet. Open a report and choose “Export”, or select a bar to export its rows." }));
      return;
    }
    body.replaceChildren(...list.map(row));
    if (!status.querySelector("table")) {
      status.replaceChildren(el("table", { class: "jobs" },
        el("caption", { class: "sr-only", text: "Your export jobs" }),
        el("thead", {}, el("tr", {}, ["Requested", "Report", "Format", "State", "Progress", "SHA-256", ""].map((h) => el("th", { scope: "col", text: h })))),
        body));
    }
  }

  async function refreshJob(id) {
    try {
      const { job } = await api(`/v1/reports/export/${id}`);
      jobs.set(job.id, job);
      draw();
      return job;
    } catch { return null; }
  }

  async function cancel(id) {
    try {
      const { job } = await api(`/v1/reports/export/${id}`, { method: "DELETE" });
      jobs.set(job.id, job);
      draw();
    } catch (err) { ctx.toast(err.message, "error"); }
  }

  async function loadAll() {
    // The newest 100 jobs (the list pages by cursor; older ones are rarely wanted here).
    const page = await api(`/v1/reports/export${query({ limit: 100 })}`);
    for (const job of page.data) jobs.set(job.id, job);
    draw();
  }
  try {
    await loadAll();
  } catch (err) {
    status.replaceChildren(el("div", { class: "state error", role: "alert" }, el("strong", { text: "Your exports could not be loaded. " }), err.message));
    return;
  }

  live.onExport(async (event) => {
    if (event.kind === "resync") {
      try { await loadAll(); } catch { /* the next event retries */ }
      return;
    }
    const job = jobs.get(event.id);
    if (!job || event.status === "completed" || event.status !== job.status) {
      await refreshJob(event.id);  // full row: checksum, download link, error message
      return;
    }
    job.processedRows = event.processed ?? job.processedRows;
    job.totalRows = event.total ?? job.totalRows;
    draw();
  });
}
