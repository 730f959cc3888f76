// Formatting (money in its currency, dates in the organization's time zone) and the
// window presets, computed on local calendar dates of the organization's time zone.

const numberFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
const moneyFormats = new Map();

export function formatNumber(value) {
  return value === null || value === undefined ? "—" : numberFormat.format(value);
}

export function formatMoney(value, currency) {
  if (value === null || value === undefined) return "—";
  if (!moneyFormats.has(currency)) {
    moneyFormats.set(currency, new Intl.NumberFormat(undefined, { style: "currency", currency, currencyDisplay: "code" }));
  }
  return moneyFormats.get(currency).format(value);
}

export function formatDays(value) {
  if (value === null || value === undefined) return "—";
  return `${numberFormat.format(value)} ${Number(value) === 1 ? "day" : "days"}`;
}

export function formatHours(value) {
  return value === null || value === undefined ? "—" : `${numberFormat.format(value)} h`;
}

export function formatDateTime(iso, timeZone) {
  if (!iso) return "—";
  return new Intl.DateTimeFormat(undefined, {
    timeZone, year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  }).format(new Date(iso));
}

export function formatMonth(ym) {
  const [y, m] = ym.split("-").map(Number);
  return new Intl.DateTimeFormat(undefined, { year: "2-digit", month: "short", timeZone: "UTC" })
    .format(new Date(Date.UTC(y, m - 1, 1)));
}

export function formatLocalDate(ymd) {
  const [y, m, d] = ymd.split("-").map(Number);
  return new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric", timeZone: "UTC" })
    .format(new Date(Date.UTC(y, m - 1, d)));
}

// ---- calendar dates in a time zone -------------------------------------------------
const partFormats = new Map();
function parts(timeZone, t) {
  if (!partFormats.has(timeZone)) {
    partFormats.set(timeZone, new Intl.DateTimeFormat("en-US", {
      timeZone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    }));
  }
  const out = {};
  for (const p of partFormats.get(timeZone).formatToParts(new Date(t))) out[p.type] = p.value;
  return out;
}

export function localDate(timeZone, t = Date.now()) {
  const p = parts(timeZone, t);
  return `${p.year}-${p.month}-${p.day}`;
}

function offsetAt(timeZone, t) {
  const p = parts(timeZone, t);
  const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour % 24, +p.minute, +p.second);
  return asUtc - Math.floor(t / 1000) * 1000;
}

// The first instant whose local date is `ymd` (the earlier midnight when there are two,
// the first instant after the gap when there is none), as an ISO string in UTC.
export function startOfLocalDay(ymd, timeZone) {
  const [y, m, d] = ymd.split("-").map(Number);
  const guess = Date.UTC(y, m - 1, d);
  let best = null;
  for (const probe of [guess - 14 * 3600e3, guess, guess + 14 * 3600e3]) {
    const t = guess - offsetAt(timeZone, probe);
    if (localDate(timeZone, t) === ymd && (best === null || t < best)) best = t;
  }
  if (best === null) best = guess;
  return new Date(best).toISOString();
}

export function addDays(ymd, days) {
  const [y, m, d] = ymd.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

export function addMonths(ymd, months) {
  const [y, m] = ymd.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1 + months, 1)).toISOString().slice(0, 10);
}

export function daysBetween(a, b) {
  return Math.round((Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / 86400e3);
}

export const PRESETS = [
  ["this_month", "This month"],
  ["last_month", "Last month"],
  ["this_quarter", "This quarter"],
  ["year_to_date", "Year to date"],
  ["last_12_months", "Last 12 months"],
  ["all_time", "All time"],
  ["custom", "Custom dates"],
];

// A preset → local dates [from, toExclusive) in the organization's time zone.
export function presetWindow(preset, timeZone, custom = {}) {
  const today = localDate(timeZone);
  const month = `${today.slice(0, 7)}-01`;
  switch (preset) {
    case "this_month": return { from: month, to: addMonths(month, 1) };
    case "last_month": return { from: addMonths(month, -1), to: month };
    case "this_quarter": {
      const m = Number(today.slice(5, 7));
      const q = `${today.slice(0, 4)}-${String(m - ((m - 1) % 3)).padStart(2, "0")}-01`;
      return { from: q, to: addMonths(q, 3) };
    }
    case "year_to_date": return { from: `${today.slice(0, 4)}-01-01`, to: addDays(today, 1) };
    case "last_12_months": return { from: addMonths(month, -11), to: addMonths(month, 1) };
    case "custom":
      if (custom.from && custom.to && custom.from <= custom.to) return { from: custom.from, to: addDays(custom.to, 1) };
      return null;
    default: return null;
  }
}

export function previousWindow(window) {
  const days = daysBetween(window.from, window.to);
  return { from: addDays(window.from, -days), to: window.from };
}
