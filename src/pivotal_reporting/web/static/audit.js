// The audit page: the organization's events with filters and paging, and whether its
// hash chain verifies.

import { api, query, ApiError } from "./api.js";
import { el } from "./charts.js";
import { formatDateTime, startOfLocalDay, addDays } from "./format.js";

export async function renderAudit(ctx) {
  const { main, me, navigate } = ctx;
  const tz = me.organization.timezone;
  const params = new URLSearchParams(location.search);
  const state = Object.fromEntries(params.entries());
  const field = (label, control) => el("label", { class: "field" }, el("span", { text: label }), control);
  const form = el("form", { class: "filters", "aria-label": "Audit filters" },
    field("Action", el("input", { name: "action", value: state.action || "", placeholder: "e.g. export.create" })),
    field("User id", el("input", { name: "userId", value: state.userId || "" })),
    field("From", el("input", { type: "date", name: "from", value: state.from || "" })),
    field("To (inclusive)", el("input", { type: "date", name: "to", value: state.to || "" })),
    el("button", { type: "submit", text: "Apply" }));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = {};
    for (const [key, value] of new FormData(form).entries()) if (value) next[key] = value;
    navigate(`/audit${query(next)}`);
  });
  const chain = el("section", { class: "card chain", "aria-live": "polite" }, el("p", { class: "state loading", text: "Verifying the hash chain…" }));
  const list = el("section", { "aria-live": "polite" }, el("p", { class: "state loading", role: "status", text: "Loading events…" }));
  main.replaceChildren(el("h1", { text: "Audit trail" }),
    el("p", { class: "muted", text: `Every access decision of ${me.organization.name}, newest first, times in ${tz}. Each event is chained to the previous one by SHA-256.` }),
    chain, form, list);

  api("/v1/audit-logs/verification").then((v) => {
    chain.replaceChildren(
      el("h2", { text: "Chain verification" }),
      el("p", { class: v.ok ? "ok" : "broken", "data-chain": v.ok ? "ok" : "broken" },
        v.ok ? `Intact: all ${v.rowsChecked} events verify.` : `Broken at event ${v.firstBreakSeq}: ${v.firstBreakReason}. ${v.rowsChecked} events verified before it.`),
      el("small", { class: "muted", text: `Checked ${formatDateTime(v.verifiedAt, tz)}` }));
  }).catch((err) => chain.replaceChildren(el("p", { class: "state error", role: "alert", text: err.message })));

  const filters = {
    action: state.action, userId: state.userId,
    from: state.from ? startOfLocalDay(state.from, tz) : undefined,
    to: state.to ? startOfLocalDay(addDays(state.to, 1), tz) : undefined,
    limit: 25,
  };
  const cursors = [null];
  async function load(cursor) {
    list.setAttribute("aria-busy", "true");
    try {
      const page = await api(`/v1/audit-logs${query({ ...filters, cursor })}`);
      if (!page.data.length) {
        list.replaceChildren(el("p", { class: "state empty", text: "No audit events match these filters." }));
        return;
      }
      const rows = page.data.map((e) => el("tr", { "data-seq": String(e.seq) },
        el("td", { text: String(e.seq) }),
        el("td", { text: formatDateTime(e.createdAt, tz) }),
        el("td", { text: e.userId || "—" }),
        el("td", {}, el("code", { text: e.action })),
        el("td", { text: `${e.resource}${e.resourceId ? ` ${e.resourceId}` : ""}` }),
        el("td", {}, el("code", { class: "details", text: JSON.stringify(e.details) }))));
      const prev = el("button", { type: "button", class: "secondary", disabled: cursors.length < 2, text: "Newer", onclick: () => { cursors.pop(); load(cursors[cursors.length - 1]); } });
      const next = el("button", { type: "button", class: "secondary", disabled: !page.nextCursor, text: "Older", onclick: () => { cursors.push(page.nextCursor); load(page.nextCursor); } });
      list.replaceChildren(
        el("table", { class: "audit" },
          el("caption", { class: "sr-only", text: "Audit events" }),
          el("thead", {}, el("tr", {}, ["#", "When", "User", "Action", "Resource", "Details"].map((h) => el("th", { scope: "col", text: h })))),
          el("tbody", {}, rows)),
        el("nav", { class: "pager", "aria-label": "Audit pages" }, prev, el("span", { text: `Page ${cursors.length}` }), next));
    } catch (err) {
      list.replaceChildren(el("div", { class: "state error", role: "alert" }, el("strong", { text: "Events could not be loaded. " }), err instanceof ApiError ? err.message : String(err)));
    } finally {
      list.setAttribute("aria-busy", "false");
    }
  }
  await load(null);
}
