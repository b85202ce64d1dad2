// seeds_nb ResultsGrid: a batch's rows, sortable, filterable, searchable (anywidget ES module, no build
// step; the list is virtualList from vlist.js, joined in front of this file by the kernel).
//
// The kernel owns the rows and pushes the window of formatted rows the browser asked for (see
// vlist.js). Sorting, filtering and searching are asked the same way, with a custom message
// ({ask: {sort_by, sort_desc, status_filter, query, viewport}}), and answered with one push: see
// _vlist.py for why the browser never writes a trait. Every piece of text is set with textContent.

const ROW_H = 24;
const FILTERS = ["all", "ok", "cached", "failed", "retrying", "cancelled"];
const FORMATS = ["csv", "parquet", "jsonl"];

function render({ model, el }) {
  el.classList.add("seeds-results-grid", "seeds-vlist");
  const root = vh("div", "sg-root");
  el.appendChild(root);

  // -- toolbar -----------------------------------------------------------------------------------
  const bar = vh("div", "sg-bar");
  const filter = vh("select", "sg-filter");
  filter.title = "Show only rows of one status";
  for (const name of FILTERS) filter.appendChild(new Option(name, name));
  const search = vh("input", "sg-search");
  search.type = "search";
  search.placeholder = "search prompts and responses";
  const rerun = vh("button", "sg-btn sg-rerun", "re-run failed");
  rerun.title = "Send only the failed rows again through the same client; they update in place";
  const dfName = vh("input", "sg-dfname");
  dfName.value = "grid_df";
  dfName.title = "Variable the DataFrame is bound to";
  const dfButton = vh("button", "sg-btn sg-df", "copy as DataFrame");
  dfButton.title = "Bind the current view (filter, search, order) to this variable as a pandas DataFrame";
  const exportPath = vh("input", "sg-path");
  exportPath.value = "results.csv";
  exportPath.title = "File the current view is written to (.csv, .parquet or .jsonl)";
  const exportButton = vh("button", "sg-btn sg-export", "export");
  exportButton.title = "Write the current view to this file";
  bar.append(filter, search, rerun, dfName, dfButton, exportPath, exportButton);
  const summary = vh("div", "sg-summary");
  const message = vh("div", "sg-message");

  // -- the list ----------------------------------------------------------------------------------
  const head = vh("div", "sv-head sg-head");
  const detail = vh("div", "sg-detail");
  let typing = 0; // the debounce timer of a search being typed
  const ask = (changes) => model.send({ ask: changes });
  const columns = () => model.get("columns") || [];
  const template = () => columns().map((c) => c[3]).join(" ");
  const list = virtualList({
    model,
    rowHeight: ROW_H,
    drawRow(line, row) {
      line.style.gridTemplateColumns = template();
      const kinds = columns().map((c) => c[2]);
      row.forEach((value, i) => {
        const cell = vh("div", `sv-cell sg-${kinds[i] || "t"}`, String(value));
        if (kinds[i] === "n") cell.classList.add("sv-n");
        if (i === 1) cell.classList.add(`sv-st-${value}`);
        if (kinds[i] === "t" && value) cell.title = String(value);
        line.appendChild(cell);
      });
    },
  });
  root.append(bar, summary, message, head, list.scroller, detail);

  function renderHead() {
    head.replaceChildren();
    head.style.gridTemplateColumns = template();
    const by = model.get("sort_by");
    const desc = model.get("sort_desc");
    for (const [key, label, kind] of columns()) {
      const cell = vh("div", `sv-hcell sg-hcell sg-${kind}`, label + (key === by ? (desc ? " ▼" : " ▲") : ""));
      cell.dataset.key = key;
      cell.title = `Sort by ${label} (click again to reverse)`;
      cell.addEventListener("click", () => {
        const desc = model.get("sort_by") === key ? !model.get("sort_desc") : false;
        ask({ sort_by: key, sort_desc: desc, viewport: list.reset() });
      });
      head.appendChild(cell);
    }
  }

  function renderSummary() {
    const counts = model.get("status_counts") || {};
    const all = Object.values(counts).reduce((a, b) => a + b, 0);
    const parts = Object.entries(counts).map(([s, n]) => `${n.toLocaleString("en-US")} ${s}`);
    const shown = model.get("view_size");
    const crit = [];
    if (model.get("status_filter") !== "all") crit.push(model.get("status_filter"));
    if (model.get("query")) crit.push(`“${model.get("query")}”`);
    summary.textContent = `${all.toLocaleString("en-US")} rows` + (parts.length ? ` · ${parts.join(" · ")}` : "") +
      (crit.length ? ` · showing ${shown.toLocaleString("en-US")} (${crit.join(", ")})` : "");
  }

  function renderControls() {
    if (filter.value !== model.get("status_filter")) filter.value = model.get("status_filter");
    // not while the user types: the box is theirs until the debounced ask went out (marimo puts the
    // widget in a shadow root, where document.activeElement is the host, not the box)
    const typingHere = typing || search.getRootNode().activeElement === search;
    if (!typingHere && search.value !== model.get("query")) search.value = model.get("query");
    const failed = (model.get("status_counts") || {}).failed || 0;
    rerun.disabled = !model.get("can_rerun") || model.get("busy") || failed === 0;
    rerun.textContent = model.get("busy") ? "re-running…" : `re-run failed${failed ? ` (${failed})` : ""}`;
    message.textContent = model.get("message") || "";
  }

  function renderDetail() {
    const d = model.get("detail") || {};
    detail.replaceChildren();
    if (vlistDetailHint(detail, d, "Click a row (or use ↑ ↓) to see its full prompt and response.")) return;
    const top = vh("div", "sg-facts");
    top.append(vh("b", "", `#${d.index}`), document.createTextNode(" · "), vh("b", `sv-st-${d.status}`, d.status));
    for (const [name, value] of d.facts || []) top.appendChild(document.createTextNode(` · ${name} ${value}`));
    detail.appendChild(top);
    detail.append(vh("div", "sv-label", "Prompt"), vh("pre", "sv-text sg-prompt", d.prompt || ""));
    const title = d.error_type ? `${d.title}: ${d.error_type}` : d.title;
    const answer = vh("pre", `sv-text sg-answer${d.error_type !== undefined ? " sv-error" : ""}`, d.text || "");
    detail.append(vh("div", "sv-label", title), answer);
    // label -> rows of cells: parsed fields, tool calls (name, id, arguments as sent), choices (n > 1)
    for (const [label, key] of [["Parsed fields", "fields"], ["Tool calls", "tool_calls"], ["Choices", "choices"]]) {
      if (!(d[key] || []).length) continue;
      detail.appendChild(vh("div", "sv-label", label));
      const table = vh("table", "sg-fields");
      for (const [name, ...values] of d[key]) {
        const tr = vh("tr");
        tr.appendChild(vh("td", "sg-fname", String(name)));
        for (const value of values) tr.appendChild(vh("td", "", value));
        table.appendChild(tr);
      }
      detail.appendChild(table);
    }
  }

  // -- events --------------------------------------------------------------------------------------
  filter.addEventListener("change", () => ask({ status_filter: filter.value, viewport: list.reset() }));
  search.addEventListener("input", () => {
    clearTimeout(typing);
    const text = search.value;
    typing = setTimeout(() => {
      typing = 0;
      ask({ query: text, viewport: list.reset() });
    }, 250);
  });
  rerun.addEventListener("click", () => model.send({ action: "rerun" }));
  dfButton.addEventListener("click", () => model.send({ action: "dataframe", name: dfName.value.trim() }));
  exportButton.addEventListener("click", () => {
    const path = exportPath.value.trim();
    const suffix = path.split(".").pop().toLowerCase();
    model.send({ action: "export", path, format: FORMATS.includes(suffix) ? suffix : null });
  });

  const onColumns = () => {
    renderHead();
    list.render();
  };
  const onCounts = () => {
    renderSummary();
    renderControls();
  };
  const onCriteria = () => {
    list.render();
    onCounts();
  };
  const handlers = [
    ["change:columns change:sort_by change:sort_desc", onColumns],
    ["change:view_size change:status_counts", onCounts],
    ["change:status_filter change:query", onCriteria],
    ["change:message change:busy change:can_rerun", renderControls],
    ["change:detail", renderDetail],
  ];
  // One event name per call: Backbone (Jupyter) splits "a b" into two events, marimo's model does not.
  const each = (verb) => {
    for (const [names, fn] of handlers) for (const name of names.split(" ")) model[verb](name, fn);
  };
  each("on");

  renderHead();
  renderSummary();
  renderControls();
  renderDetail();
  return () => {
    each("off");
    list.destroy();
  };
}

export default { render };
