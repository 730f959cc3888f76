// Charts as plain HTML (bars are <button>s when they can be drilled into): readable by
// screen readers, reachable by keyboard, no chart library to ship.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "style") {
      // Set through the CSSOM: the Content-Security-Policy forbids inline style attributes.
      for (const rule of String(value).split(";")) {
        const [prop, val] = rule.split(":");
        if (prop && val) node.style.setProperty(prop.trim(), val.trim());
      }
    }
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function barRow({ label, value, display, max, drill, field, key, hint }) {
  const width = max > 0 ? Math.max(0.5, (100 * value) / max) : 0;
  const content = [
    el("span", { class: "bar-label", text: label }),
    el("span", { class: "bar-track", "aria-hidden": "true" }, el("span", { class: "bar-fill", style: `width:${width}%` })),
    el("span", { class: "bar-value", text: display }),
  ];
  const attrs = { class: "bar-row", "data-field": field, "data-key": key, "data-raw": String(value) };
  if (drill) {
    return el("button", { ...attrs, type: "button", title: hint || "Export these rows", onclick: drill }, content);
  }
  return el("div", { ...attrs, title: hint }, content);
}

// Horizontal bars: statuses, methods, currencies.
export function bars({ field, entries, format, onDrill, drillable = () => true, hint }) {
  const max = Math.max(0, ...entries.map(([, v]) => v));
  return el("div", { class: "bars", "data-chart": field },
    entries.map(([key, value, label]) => barRow({
      label: label ?? key, value, display: format(value), max, field, key,
      drill: onDrill && drillable(key) ? () => onDrill(key) : null,
      hint: onDrill && drillable(key) ? "Export these rows" : hint,
    })));
}

// Distribution buckets: vertical columns in bucket order; a non-empty one is a button
// when it can be drilled into (its rows exported).
export function histogram({ field, buckets, onDrill }) {
  const max = Math.max(0, ...buckets.map((b) => b.count));
  return el("div", { class: "histogram", "data-chart": field, role: "list" },
    buckets.map((b) => {
      const inner = [
        el("span", { class: "column-value", text: String(b.count) }),
        el("span", { class: "column-track", "aria-hidden": "true" },
          el("span", { class: "column-fill", style: `height:${max ? Math.max(1, (100 * b.count) / max) : 0}%` })),
        el("span", { class: "column-label", text: b.range.replace(/-/g, "-\u200b") }),
        el("span", { class: "column-share", text: `${b.percentage} %` }),
      ];
      const attrs = { class: "column", "data-key": b.range, "data-raw": String(b.count), title: `${b.range}: ${b.count} (${b.percentage} %)` };
      if (onDrill && b.count > 0) {
        return el("div", { role: "listitem", class: "column-item" },
          el("button", { ...attrs, type: "button", title: `${attrs.title}: export these rows`, onclick: () => onDrill(b) },
            inner, el("span", { class: "sr-only", text: "Export these rows" })));
      }
      return el("div", { ...attrs, role: "listitem" }, inner);
    }));
}

// Months as a time series: a column per month, each one drillable.
export function timeSeries({ field, entries, formatLabel, onDrill }) {
  const max = Math.max(0, ...entries.map(([, v]) => v));
  return el("div", { class: "histogram series", "data-chart": field },
    entries.map(([key, value]) => {
      const inner = [
        el("span", { class: "column-value", text: String(value) }),
        el("span", { class: "column-track", "aria-hidden": "true" },
          el("span", { class: "column-fill", style: `height:${max ? Math.max(1, (100 * value) / max) : 0}%` })),
        el("span", { class: "column-label" }, ...formatLabel(key).split(" ").map((part) => el("span", { text: part }))),
      ];
      const attrs = { class: "column", "data-key": key, "data-raw": String(value), title: `${formatLabel(key)}: ${value}` };
      return onDrill
        ? el("button", { ...attrs, type: "button", onclick: () => onDrill(key) }, inner, el("span", { class: "sr-only", text: "Export these rows" }))
        : el("div", attrs, inner);
    }));
}

// Customers / projects / users: the top entries, the rest summed, and a search over all.
// With ``rest`` ({customers, count}: the server already summed the entries beyond the top)
// the entries are only the top ones, and ``searchAll(q)`` finds names among all of them
// ({id, name} items, drilled into by id with ``onDrillItem``).
export function topList({ field, entries, format, onDrill, drillable = () => true, top = 10, noun, rest: serverRest, searchAll, onDrillItem }) {
  const sorted = [...entries].sort((a, b) => b[1] - a[1] || String(a[0]).localeCompare(String(b[0])));
  const list = el("div", { class: "toplist-rows" });
  const total = serverRest ? sorted.length + serverRest.customers : sorted.length;
  const search = el("input", { type: "search", placeholder: `Search ${total} ${noun}`, "aria-label": `Search ${noun}` });
  let asked = 0;
  const renderFound = async (typed) => {
    const ticket = ++asked;
    let found;
    try { found = await searchAll(typed); } catch { found = null; }
    if (ticket !== asked) return;  // a newer search has started
    if (found === null) { list.replaceChildren(el("p", { class: "state error", text: "The search failed; try again." })); return; }
    const known = new Map(sorted);
    const rows = found.map((item) => {
      const value = known.get(item.name);
      const row = barRow({
        label: item.name, value: value ?? 0, display: value === undefined ? `not in the top ${top}` : format(value), max: Math.max(0, ...sorted.map(([, v]) => v)),
        field, key: item.name, drill: onDrillItem ? () => onDrillItem(item) : null,
        hint: value === undefined ? `Not among the top ${top} in this window; select to export its rows` : undefined,
      });
      row.classList.add("found");
      return row;
    });
    if (!rows.length) rows.push(el("p", { class: "state empty", text: `No ${noun} match “${typed}”.` }));
    list.replaceChildren(...rows);
  };
  const render = () => {
    const needle = search.value.trim().toLowerCase();
    if (needle && searchAll) { renderFound(search.value.trim()); return; }
    asked++;
    const matching = needle ? sorted.filter(([k]) => String(k).toLowerCase().includes(needle)) : sorted;
    const shown = matching.slice(0, top);
    const rest = matching.slice(top);
    const max = Math.max(0, ...shown.map(([, v]) => v));
    const restCount = serverRest ? serverRest.customers : rest.length;
    const rows = shown.map(([key, value], i) => barRow({
      label: `${i + 1}. ${key}`, value, display: format(value), max, field, key,
      drill: onDrill && drillable(key) ? () => onDrill(key) : null,
      hint: onDrill && !drillable(key) ? "No filter selects these rows" : undefined,
    }));
    if (restCount) {
      const sum = serverRest ? serverRest.count + rest.reduce((acc, [, v]) => acc + v, 0) : rest.reduce((acc, [, v]) => acc + v, 0);
      const others = serverRest ? serverRest.customers + rest.length : rest.length;
      rows.push(el("div", { class: "bar-row rest", "data-field": field, "data-key": "__rest__", "data-raw": String(sum), title: `${others} more ${noun}, summed` },
        el("span", { class: "bar-label", text: `${others} others` }),
        el("span", { class: "bar-track", "aria-hidden": "true" }),
        el("span", { class: "bar-value", text: format(sum) })));
    }
    if (!rows.length) rows.push(el("p", { class: "state empty", text: needle ? `No ${noun} match “${search.value}”.` : `No ${noun} in this window.` }));
    list.replaceChildren(...rows);
  };
  search.addEventListener("input", render);
  render();
  return el("div", { class: "toplist", "data-chart": field }, search, list);
}
