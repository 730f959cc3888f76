// The dashboard shell: who is signed in, navigation by permission, the page router.

import { api, ApiError } from "./api.js";
import { el } from "./charts.js";
import { Live } from "./live.js";
import { renderReport } from "./reports.js";
import { openExportDialog, renderExports } from "./exports.js";
import { renderAudit } from "./audit.js";

const boot = JSON.parse(document.getElementById("boot").textContent);
const main = document.getElementById("main");
const toasts = document.getElementById("toasts");
const seenFinished = new Set();

function toast(text, kind = "info", link) {
  const node = el("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" }, text,
    link ? el("a", { href: link.href, onclick: (e) => { e.preventDefault(); node.remove(); navigate(link.href); } }, ` ${link.text}`) : null,
    el("button", { type: "button", class: "close", "aria-label": "Dismiss", onclick: () => node.remove() }, "×"));
  toasts.append(node);
  setTimeout(() => node.remove(), kind === "error" ? 12000 : 8000);
}

const live = new Live({
  onExportFinished(event) {
    if (seenFinished.has(event.id)) return;
    seenFinished.add(event.id);
    if (event.status === "completed") toast("Your export is ready to download.", "success", { href: "/exports", text: "Open Exports" });
    else toast("An export failed.", "error", { href: "/exports", text: "Details" });
  },
});

let me = null;

function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  route();
}

const ctx = {
  boot, main, live, toast, navigate,
  get me() { return me; },
  openExport: (report, filters, label, note) => openExportDialog(ctx, report, filters, label, note),
};

function renderNav() {
  const nav = document.getElementById("nav");
  const links = boot.reports.map((r) => [`/reports/${r.path}`, shortTitle(r)]);
  if (me.permissions.includes("reports.view_reports")) links.push(["/exports", "Exports"]);
  if (me.permissions.includes("audit.view_audit_logs")) links.push(["/audit", "Audit"]);
  nav.replaceChildren(...links.map(([href, text]) => el("a", {
    href, "aria-current": location.pathname === href ? "page" : null,
    onclick: (e) => { if (e.ctrlKey || e.metaKey || e.shiftKey) return; e.preventDefault(); navigate(href); },
  }, text)));
  document.getElementById("who").textContent = `${me.user.displayName} · ${me.organization.name}`;
  document.getElementById("topbar").hidden = false;
}

function shortTitle(report) {
  return { quote_cycle_time: "Quotes", invoice_settlement_time: "Invoices", payments_received: "Payments", time_approvals: "Time" }[report.type] || report.title;
}

function renderSignIn(message) {
  document.getElementById("topbar").hidden = true;
  live.stop();
  const token = el("textarea", { id: "token", name: "token", rows: "4", required: true, autocomplete: "off", spellcheck: "false" });
  const error = el("p", { class: "state error", role: "alert", hidden: !message, text: message || "" });
  const provider = boot.providerSignIn
    ? [el("a", { class: "button", id: "provider-signin", href: "/oidc/login", text: "Sign in with your identity provider" }),
       el("p", { text: "Or paste a bearer token of the identity provider:" })]
    : [el("p", { text: "Open the one-time link printed by “pivotal-reporting serve --demo” or “pivotal-reporting login-link --user ID”, or paste a bearer token:" })];
  const form = el("form", { class: "signin card" },
    el("h1", { text: "Sign in" }),
    ...provider,
    el("label", { for: "token", class: "field" }, el("span", { text: "Bearer token" }), token),
    error,
    el("button", { type: "submit", text: "Sign in" }));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      me = await api("/v1/session", { method: "POST", body: { token: token.value.trim() } });
      navigate("/", { replace: true });
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    }
  });
  main.replaceChildren(form);
  token.focus();
}

async function route() {
  live.reset();
  if (!me) {
    try {
      me = await api("/v1/me");
    } catch (err) {
      const signin = new URLSearchParams(location.search).get("signin");
      const failures = {
        failed: "That sign-in link is invalid, expired or already used. Ask for a new one.",
        "provider-failed": "Signing in through the identity provider did not succeed. Try again, or ask an administrator.",
      };
      renderSignIn(failures[signin] || (err.status === 401 ? "" : err.message));
      return;
    }
    live.start();
  }
  let path = location.pathname;
  if (path === "/" || path === "") {
    path = `/reports/${boot.reports[0].path}`;
    history.replaceState(null, "", path);
  }
  renderNav();
  main.setAttribute("aria-busy", "true");
  try {
    const report = boot.reports.find((r) => path === `/reports/${r.path}`);
    if (report) {
      document.title = `${shortTitle(report)} · Pivotal Flow Reporting`;
      await renderReport(ctx, report);
    } else if (path === "/exports") {
      document.title = "Exports · Pivotal Flow Reporting";
      await renderExports(ctx);
    } else if (path === "/audit" && me.permissions.includes("audit.view_audit_logs")) {
      document.title = "Audit · Pivotal Flow Reporting";
      await renderAudit(ctx);
    } else {
      main.replaceChildren(el("h1", { text: "Not available" }), el("p", { class: "state error", role: "alert", text: path === "/audit" ? "The audit trail requires the audit.view_audit_logs permission." : "There is no such page." }));
    }
  } catch (err) {
    main.replaceChildren(el("p", { class: "state error", role: "alert", text: err instanceof ApiError ? err.message : String(err) }));
  } finally {
    main.setAttribute("aria-busy", "false");
  }
}

document.getElementById("signout").addEventListener("click", async () => {
  try { await api("/v1/session", { method: "DELETE" }); } catch { /* signed out anyway */ }
  me = null;
  live.stop();
  navigate("/", { replace: true });
});
document.addEventListener("signed-out", () => { if (me) { me = null; renderSignIn("Your session has ended; sign in again."); } });
window.addEventListener("popstate", route);
route();
