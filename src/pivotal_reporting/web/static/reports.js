// The four report pages: filters in the URL, headline cards with deltas against the
// previous period, breakdown charts, drill-down into the export dialog, live refresh.

import { api, query, ApiError } from "./api.js";
import { bars, el, histogram, timeSeries, topList } from "./charts.js";
import {
  PRESETS, addMonths, formatDays, formatHours, formatMoney, formatMonth, formatNumber,
  formatDateTime, formatLocalDate, presetWindow, previousWindow, startOfLocalDay,
} from "./format.js";

const count = (v) => formatNumber(v);
const days = (v) => formatDays(v);
const hours = (v) => formatHours(v);

// What each report shows. Cards: [field, kind]; charts: [field, kind, drill].
// Top lists show this many entries; the invoice and payment summaries are asked for only
// these customers and the rest summed (customerLimit), the search asks the lookup API.
export const TOP = 10;

export const PAGES = {
  quote_cycle_time: {
    noun: "quotes",
    pickers: [["customerId", "customers", "Customer"], ["projectId", "projects", "Project"]],
    cards: [["totalQuotes", "count"], ["averageCycleTimeDays", "days"], ["medianCycleTimeDays", "days"],
      ["minCycleTimeDays", "days"], ["maxCycleTimeDays", "days"]],
    charts: [
      ["quotesByStatus", "bars", "Quotes by decision", { filter: "status" }],
      ["cycleTimeDistribution", "histogram", "Cycle time distribution (days)", { bucketFilter: "cycleTimeBucket" }],
      ["quotesByProject", "toplist", "Quotes by project", { lookup: "projects", filter: "projectId", noun: "projects", skip: ["(no project)"] }],
    ],
  },
  invoice_settlement_time: {
    noun: "invoices",
    summaryParams: { customerLimit: TOP },
    pickers: [["customerId", "customers", "Customer"]],
    cards: [["totalInvoices", "count"], ["averageSettlementTimeDays", "days"], ["medianSettlementTimeDays", "days"],
      ["overdueInvoices", "count"], ["overdueAmount", "money"]],
    charts: [
      ["invoicesByStatus", "bars", "Invoices by status", { filter: "status", overdue: true }],
      ["settlementTimeDistribution", "histogram", "Settlement time distribution (days)", { bucketFilter: "settlementTimeBucket", asOf: true }],
      ["totalsByCurrency", "currency", "Invoiced by currency", { filter: "currency" }],
      ["overdueByCurrency", "currency", "Overdue balance by currency", { filter: "currency", overdueOnly: true }],
      ["invoicesByCustomer", "toplist", "Invoices by customer", { lookup: "customers", filter: "customerId", noun: "customers" }],
    ],
  },
  payments_received: {
    noun: "payments",
    summaryParams: { customerLimit: TOP },
    pickers: [["customerId", "customers", "Customer"]],
    cards: [["totalPayments", "count"], ["totalAmount", "money"], ["averageAmount", "money"]],
    charts: [
      ["paymentsByMonth", "months", "Payments by month", {}],
      ["paymentsByMethod", "bars", "Payments by method", { filter: "method" }],
      ["totalsByCurrency", "currency", "Received by currency", { filter: "currency" }],
      ["amountDistribution", "histogram", "Amount distribution", { inCurrency: true, bucketFilter: "amountBucket" }],
      ["paymentsByCustomer", "toplist", "Payments by customer", { lookup: "customers", filter: "customerId", noun: "customers" }],
    ],
  },
  time_approvals: {
    noun: "time entries",
    pickers: [["userId", "users", "User"], ["projectId", "projects", "Project"]],
    cards: [["totalEntries", "count"], ["totalHours", "hours"], ["billableHours", "hours"], ["pendingApprovals", "count"],
      ["medianApprovalTimeHours", "hours"], ["oldestPendingAgeDays", "days"]],
    charts: [
      ["entriesByStatus", "bars", "Entries by status", { filter: "status" }],
      ["approvalTimeDistribution", "histogram", "Approval time distribution (days)", { bucketFilter: "approvalTimeBucket" }],
      ["hoursByProject", "toplist", "Hours by project", { lookup: "projects", filter: "projectId", noun: "projects", format: hours }],
      ["hoursByUser", "toplist", "Hours by user", { lookup: "users", filter: "userId", noun: "users", format: hours }],
    ],
  },
};

const LABELS = {
  totalQuotes: "Quotes decided", averageCycleTimeDays: "Average cycle time", medianCycleTimeDays: "Median cycle time",
  minCycleTimeDays: "Shortest cycle", maxCycleTimeDays: "Longest cycle", totalInvoices: "Invoices issued",
  averageSettlementTimeDays: "Average settlement time", medianSettlementTimeDays: "Median settlement time",
  overdueInvoices: "Overdue invoices", overdueAmount: "Overdue balance", totalPayments: "Payments received",
  totalAmount: "Amount received", averageAmount: "Average payment", totalEntries: "Time entries", totalHours: "Hours worked",
  billableHours: "Billable hours", pendingApprovals: "Awaiting approval", medianApprovalTimeHours: "Median approval time",
  oldestPendingAgeDays: "Oldest pending entry",
};

function humanize(key) {
  return String(key).replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
}

function filterFromUrl(params) {
  const state = Object.fromEntries(params.entries());
  state.preset = state.preset || "last_12_months";
  return state;
}

function windowOf(state, tz) {
  return presetWindow(state.preset, tz, { from: state.from, to: state.to });
}

// The API filters of a page state (window as instants of the org's local midnights).
export function apiFilters(state, tz, window) {
  const filters = {};
  if (window) {
    filters.fromDate = startOfLocalDay(window.from, tz);
    filters.toDate = startOfLocalDay(window.to, tz);
  }
  for (const key of ["currency", "status", "method", "customerId", "projectId", "userId"]) {
    if (state[key]) filters[key] = state[key];
  }
  if (state.overdueOnly === "true") filters.overdueOnly = true;
  return filters;
}

function enumOf(schema, name) {
  const prop = schema.properties?.[name];
  if (!prop) return null;
  const options = prop.enum || (prop.anyOf || []).flatMap((a) => a.enum || []);
  return options.length ? options : null;
}

function describe(schema, field) {
  return schema.properties?.[field]?.description || "";
}

export async function renderReport(ctx, report) {
  const { me, main, navigate, openExport, live } = ctx;
  const tz = me.organization.timezone;
  const page = PAGES[report.type];
  const state = filterFromUrl(new URLSearchParams(location.search));
  const canExport = me.permissions.includes("reports.export_reports");

  const heading = el("h1", { text: report.title.replace(/\.$/, "") });
  const tzNote = el("p", { class: "muted", text: `Windows and months in ${tz}. Amounts in their own currency; currencies are never added together.` });
  const form = buildFilterForm(ctx, report, page, state, (next) => navigate(`/reports/${report.path}${query(next)}`));
  const results = el("section", { class: "results", "aria-live": "polite", "aria-busy": "true" });
  main.replaceChildren(heading, tzNote, form, results);

  const window = windowOf(state, tz);
  const filters = apiFilters(state, tz, window);
  const compare = state.compare !== "0" && window;

  async function load() {
    results.setAttribute("aria-busy", "true");
    if (!results.children.length) results.replaceChildren(el("p", { class: "state loading", role: "status", text: "Loading figures…" }));
    try {
      const path = `/v1/reports/summary/${report.path}`;
      // Both requests start now; the figures are shown as soon as the window's arrive,
      // and the comparison is added to the cards when the previous period's do.
      const extra = page.summaryParams || {};
      const previousRequest = compare ? api(path + query({ ...apiFilters(state, tz, previousWindow(window)), ...extra })) : null;
      if (previousRequest) previousRequest.catch(() => null);
      const current = await api(path + query({ ...filters, ...extra }));
      renderFigures(ctx, report, page, state, window, filters, current, null, canExport, results);
      performance.mark("figures-shown");  // what bench/dashboard.py measures
      if (previousRequest) {
        try {
          addComparison(results, page, window, current, await previousRequest);
        } catch (err) {
          results.querySelector(".window")?.append(el("span", { class: "muted", text: ` · previous period unavailable: ${err.message}` }));
        }
      }
    } catch (err) {
      results.replaceChildren(el("div", { class: "state error", role: "alert" },
        el("strong", { text: "The figures could not be loaded. " }), err instanceof ApiError ? err.message : String(err)));
    } finally {
      results.setAttribute("aria-busy", "false");
    }
  }
  await load();
  live.onFigures(report.type, load);
}

function buildFilterForm(ctx, report, page, state, apply) {
  const { me } = ctx;
  const schema = report.filters;
  const form = el("form", { class: "filters", "aria-label": "Filters" });
  const field = (label, control, hint) => el("label", { class: "field" }, el("span", { text: label }), control, hint ? el("small", { text: hint }) : null);

  const preset = el("select", { name: "preset" }, PRESETS.map(([value, label]) => el("option", { value, selected: value === state.preset, text: label })));
  const from = el("input", { type: "date", name: "from", value: state.from || "" });
  const to = el("input", { type: "date", name: "to", value: state.to || "" });
  const custom = el("span", { class: "custom-dates", hidden: state.preset !== "custom" }, field("From", from), field("To (inclusive)", to));
  preset.addEventListener("change", () => { custom.hidden = preset.value !== "custom"; });
  form.append(field("Window", preset), custom);

  for (const name of ["status", "method"]) {
    const options = enumOf(schema, name);
    if (!options) continue;
    form.append(field(humanize(name), el("select", { name },
      el("option", { value: "", text: "Any" }),
      options.map((o) => el("option", { value: o, selected: state[name] === o, text: humanize(o) })))));
  }
  if (schema.properties?.currency) {
    form.append(field("Currency", el("input", {
      name: "currency", value: state.currency || "", placeholder: me.organization.baseCurrency,
      pattern: "[A-Za-z]{3}", maxlength: "3", size: "5", autocomplete: "off",
    }), "ISO code; empty: all, headline in base"));
  }
  if (schema.properties?.overdueOnly) {
    form.append(el("label", { class: "field check" }, el("input", { type: "checkbox", name: "overdueOnly", checked: state.overdueOnly === "true" }), el("span", { text: "Overdue only" })));
  }
  for (const [key, kind, label] of page.pickers) form.append(picker(key, kind, label, state));
  form.append(el("label", { class: "field check" }, el("input", { type: "checkbox", name: "compare", checked: state.compare !== "0" }), el("span", { text: "Compare with previous period" })));
  form.append(el("button", { type: "submit", text: "Apply" }));

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const next = {};
    for (const [key, value] of data.entries()) if (value !== "") next[key] = value;
    if (next.currency) next.currency = next.currency.toUpperCase();
    if (next.preset !== "custom") { delete next.from; delete next.to; }
    next.overdueOnly = data.get("overdueOnly") ? "true" : undefined;
    next.compare = data.get("compare") ? undefined : "0";
    apply(next);
  });
  return form;
}

function picker(key, kind, label, state) {
  const nameKey = key.replace(/Id$/, "Name");
  const hidden = el("input", { type: "hidden", name: key, value: state[key] || "" });
  const hiddenName = el("input", { type: "hidden", name: nameKey, value: state[nameKey] || "" });
  const listId = `list-${key}`;
  const input = el("input", {
    type: "text", list: listId, value: state[nameKey] || "", placeholder: `Any ${label.toLowerCase()}`,
    autocomplete: "off", "aria-describedby": `${listId}-hint`,
  });
  const datalist = el("datalist", { id: listId });
  let found = [];
  let timer;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    const typed = input.value;
    const match = found.find((item) => item.name === typed);
    hidden.value = match ? match.id : "";
    hiddenName.value = match ? match.name : "";
    if (!typed) return;
    timer = setTimeout(async () => {
      try {
        found = (await api(`/v1/lookups/${kind}${query({ q: typed, limit: 10 })}`)).items;
        datalist.replaceChildren(...found.map((item) => el("option", { value: item.name })));
        const exact = found.find((item) => item.name === input.value);
        if (exact) { hidden.value = exact.id; hiddenName.value = exact.name; }
      } catch { /* the form still works without suggestions */ }
    }, 200);
  });
  return el("label", { class: "field" }, el("span", { text: label }), input, datalist, hidden, hiddenName,
    el("small", { id: `${listId}-hint`, text: "Type to search; pick a suggestion" }));
}

function delta(current, previous, kind, currency) {
  if (current === null || current === undefined) return null;
  if (previous === null || previous === undefined) {
    return el("span", { class: "delta flat" }, "No figure for the previous period");
  }
  const diff = current - previous;
  const fmt = kind === "money" ? (v) => formatMoney(v, currency) : kind === "days" ? days : kind === "hours" ? hours : count;
  const sign = diff > 0 ? "+" : diff < 0 ? "−" : "±";
  const pct = previous ? ` (${sign}${Math.abs((100 * diff) / previous).toFixed(1)} %)` : "";
  return el("span", { class: `delta ${diff > 0 ? "up" : diff < 0 ? "down" : "flat"}`, "data-delta": String(diff) },
    `${sign}${fmt(Math.abs(diff)).replace(/^[-−]/, "")}${pct} vs previous period`);
}

function renderFigures(ctx, report, page, state, window, filters, current, previous, canExport, results) {
  const { me, openExport } = ctx;
  const tz = me.organization.timezone;
  const summary = current.summary;
  const currency = summary.currency || me.organization.baseCurrency;
  const summarySchema = report.summary;
  const nodes = [];

  const windowText = window ? `${formatLocalDate(window.from)} – ${formatLocalDate(window.to === window.from ? window.to : addDaysText(window.to))}` : "All time";
  nodes.push(el("p", { class: "window", "data-window": window ? `${window.from}/${window.to}` : "" },
    el("strong", { text: windowText }),
    previous ? el("span", { class: "muted", text: ` · compared with the ${window ? "previous " + daysText(window) : ""}` }) : null,
    el("span", { class: "muted", text: ` · computed ${formatDateTime(current.generatedAt, tz)}` })));

  const total = summary[page.cards[0][0]];
  const cards = el("div", { class: "cards" });
  for (const [fieldName, kind] of page.cards) {
    const value = summary[fieldName];
    const shown = kind === "money" ? formatMoney(value, currency) : kind === "days" ? days(value) : kind === "hours" ? hours(value) : count(value);
    const definition = describe(summarySchema, fieldName) || LABELS[fieldName];
    cards.append(el("article", { class: "card", "data-field": fieldName, "data-raw": value === null ? "null" : String(value) },
      el("h2", {}, LABELS[fieldName] || humanize(fieldName),
        el("button", { type: "button", class: "info", "aria-label": `Definition of ${LABELS[fieldName]}`, title: definition,
          onclick: (e) => toggleDefinition(e.currentTarget, definition) }, "?")),
      el("p", { class: "figure", text: shown }),
      previous ? delta(value, previous.summary[fieldName], kind, currency) : null));
  }
  nodes.push(cards);

  if (!total) {
    nodes.push(el("p", { class: "state empty", text: `No ${page.noun} in this window. Widen the window or clear a filter.` }));
    results.replaceChildren(...nodes);
    return;
  }

  const drillTo = (extra, label, note) => (canExport ? openExport(report, { ...filters, ...extra }, label, note) : null);
  const grid = el("div", { class: "charts" });
  for (const [fieldName, kind, title, drill = {}] of page.charts) {
    const value = summary[fieldName];
    if (value === undefined) continue;
    const definition = describe(summarySchema, fieldName);
    let body;
    if (kind === "histogram") {
      body = histogram({
        field: fieldName, buckets: value,
        onDrill: canExport && drill.bucketFilter
          ? (bucket) => drillTo(bucketFilters(bucket, drill, summary), `${title}: ${bucket.range}`, bucketNote(drill, summary, tz))
          : null,
      });
    } else if (kind === "months") {
      const entries = fillMonths(value, window);
      body = timeSeries({
        field: fieldName, entries, formatLabel: formatMonth,
        onDrill: canExport ? (ym) => drillTo(monthFilters(ym, window, tz), `${page.noun} in ${formatMonth(ym)}`) : null,
      });
    } else if (kind === "currency") {
      const entries = Object.entries(value).map(([cur, t]) => [cur, Number(t.amount), `${cur} (${t.count})`]);
      body = bars({
        field: fieldName, entries, format: (v) => v, onDrill: canExport ? (cur) => drillTo(currencyFilters(cur, drill), `${title}: ${cur}`) : null,
      });
      for (const row of body.querySelectorAll(".bar-value")) {
        const cur = row.parentElement.dataset.key;
        row.textContent = formatMoney(value[cur].amount, cur);
      }
    } else if (kind === "bars") {
      const entries = Object.entries(value).map(([k, v]) => [k, v, humanize(k)]);
      body = bars({
        field: fieldName, entries, format: count,
        onDrill: canExport ? (key) => drillTo(statusFilters(key, drill, summary), `${title}: ${humanize(key)}`, statusNote(key, drill)) : null,
      });
    } else if (kind === "toplist") {
      const format = drill.format || count;
      const rest = fieldName.endsWith("ByCustomer") ? summary.otherCustomers : undefined;
      body = topList({
        field: fieldName, entries: Object.entries(value).map(([k, v]) => [k, Number(v)]), format, noun: drill.noun, top: TOP, rest,
        // The breakdown holds the top entries only: search every name with the lookup API.
        searchAll: rest ? async (q) => (await api(`/v1/lookups/${drill.lookup}${query({ q, limit: TOP })}`)).items : null,
        onDrillItem: canExport ? (item) => drillTo({ [drill.filter]: item.id }, `${title}: ${item.name}`) : null,
        drillable: (key) => !(drill.skip || []).includes(key),
        onDrill: canExport ? async (name) => {
          try {
            const found = (await api(`/v1/lookups/${drill.lookup}${query({ name, limit: 50 })}`)).items;
            if (found.length !== 1) {
              ctx.toast(found.length ? `${found.length} ${drill.noun} are named “${name}”; pick one with the filter above.` : `“${name}” was not found.`, "error");
              return;
            }
            drillTo({ [drill.filter]: found[0].id }, `${title}: ${name}`);
          } catch (err) { ctx.toast(err.message, "error"); }
        } : null,
      });
    }
    grid.append(el("section", { class: `chart chart-${kind}`, "aria-labelledby": `h-${fieldName}` },
      el("h2", { id: `h-${fieldName}` }, drill.inCurrency ? `${title} (${currency})` : title,
        definition ? el("button", { type: "button", class: "info", "aria-label": `Definition of ${title}`, title: definition, onclick: (e) => toggleDefinition(e.currentTarget, definition) }, "?") : null),
      body,
      canExport && (kind !== "histogram" || drill.bucketFilter) ? el("p", { class: "hint", text: "Select a bar to export its rows." }) : null));
  }
  nodes.push(grid);
  if (canExport) {
    nodes.push(el("p", {}, el("button", { type: "button", class: "secondary", onclick: () => drillTo({}, "this view") }, `Export all ${page.noun} in this view`)));
  }
  results.replaceChildren(...nodes);
}

// Every month of the window, empty ones as 0, so the series has no silent gaps.
function fillMonths(byMonth, window) {
  const keys = Object.keys(byMonth).sort();
  if (!keys.length) return [];
  let month = window ? window.from.slice(0, 7) : keys[0];
  const last = window ? addDaysText(window.to).slice(0, 7) : keys[keys.length - 1];
  const out = [];
  while (month <= last && out.length < 240) {
    out.push([month, byMonth[month] || 0]);
    month = addMonths(`${month}-01`, 1).slice(0, 7);
  }
  return out;
}

function addComparison(results, page, window, current, previous) {
  const currency = current.summary.currency;
  for (const [fieldName, kind] of page.cards) {
    const card = results.querySelector(`.card[data-field="${fieldName}"]`);
    const shown = card && delta(current.summary[fieldName], previous.summary[fieldName], kind, currency);
    if (shown) card.append(shown);
  }
  results.querySelector(".window strong")?.after(el("span", { class: "muted", text: ` · compared with the previous ${daysText(window)}` }));
}

function addDaysText(ymd) {
  const [y, m, d] = ymd.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d - 1)).toISOString().slice(0, 10);
}

function daysText(window) {
  const n = Math.round((Date.parse(window.to) - Date.parse(window.from)) / 86400e3);
  return `${n} days`;
}

function toggleDefinition(button, text) {
  let note = button.parentElement.nextElementSibling;
  if (note && note.classList.contains("definition")) { note.remove(); button.setAttribute("aria-expanded", "false"); return; }
  note = el("p", { class: "definition", text });
  button.parentElement.after(note);
  button.setAttribute("aria-expanded", "true");
}

function statusNote(key, drill) {
  if (drill.overdue && key !== "overdue") {
    return `The bar counts ${humanize(key).toLowerCase()} invoices that are not overdue; the status filter also selects the overdue ones with this status.`;
  }
  return null;
}

function monthFilters(ym, window, tz) {
  let from = `${ym}-01`;
  let to = addMonths(from, 1);
  if (window) {
    if (window.from > from) from = window.from;
    if (window.to < to) to = window.to;
  }
  return { fromDate: startOfLocalDay(from, tz), toDate: startOfLocalDay(to, tz) };
}

// A distribution bar's filter: the bucket key is the label's numbers ("8-14 days" → "8-14",
// "$1,001-$5,000" → "1001-5000"), as the API derives it. Open invoices are placed by days
// outstanding as of the summary's instant, and amounts are bucketed in amountCurrency.
export function bucketKey(range) {
  return String(range).replace(/[^0-9+-]/g, "");
}

function bucketFilters(bucket, drill, summary) {
  const filters = { [drill.bucketFilter]: bucketKey(bucket.range) };
  if (drill.asOf) filters.asOf = summary.asOf;
  if (drill.inCurrency) filters.currency = summary.amountCurrency;
  return filters;
}

function bucketNote(drill, summary, tz) {
  if (drill.asOf) return `Open invoices are placed by their days outstanding as of ${formatDateTime(summary.asOf, tz)}, like the chart.`;
  if (drill.inCurrency) return `Payments in ${summary.amountCurrency}, like the chart.`;
  return null;
}

function currencyFilters(cur, drill) {
  return drill.overdueOnly ? { currency: cur, overdueOnly: true } : { currency: cur };
}

function statusFilters(key, drill, summary) {
  if (drill.overdue) {
    // "overdue" is not a stored status: it is the overdue-only filter, as of the same instant.
    return key === "overdue" ? { overdueOnly: true, asOf: summary.asOf } : { status: key, asOf: summary.asOf };
  }
  return { [drill.filter]: key };
}
