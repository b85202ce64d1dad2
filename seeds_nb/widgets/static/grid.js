// seeds_nb ResultsGrid: a virtualised list of a batch's rows (anywidget ES module, no build step).
//
// The kernel owns the rows and pushes `window` = {start, rows} (formatted text) for the rows the
// browser asked for in `viewport` = [start, size]. The list has a fixed row height, so the scroll
// position is a row number: only the rows in view are in the DOM. Every piece of text is set with
// textContent (never as markup), so nothing a model or a user wrote can become markup.
//
// The browser never writes a trait: it *asks* with a custom message, {ask: {viewport, selected,
// sort_by, sort_desc, status_filter, query}}, and the kernel sets its traits and answers with one
// push. Why (see _grid.py): Jupyter's widget manager keeps one trait update per model in flight until
// the kernel reports "idle" for it, which ipykernel 7.4 does not do for a comm message it handles
// while a cell awaits, so after a scroll during an awaited run every later click or scroll was held
// back for good; a custom message has no such gate (Cancel is one too). In marimo a trait update also sets the element's
// value (and re-runs cells that read it); a custom message only reaches the widget.

const ROW_H = 24;
const OVERSCAN = 40;
const FILTERS = ["all", "ok", "cached", "failed", "retrying", "cancelled"];
const FORMATS = ["csv", "parquet", "jsonl"];
// Where each grid's list is scrolled, by its `_view_key`, page-wide: when the kernel updates a grid's
// output (its saved text/html snapshot, at the end of a run or a re-run), JupyterLab and Notebook 7
// draw it again as a new view, which opens where the old one was instead of at the top.
const SCROLLS = (globalThis[Symbol.for("seeds_nb.grid.scrolls")] ??= new Map());

function h(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function render({ model, el }) {
  el.classList.add("seeds-results-grid");
  const root = h("div", "sg-root");
  el.appendChild(root);

  // -- toolbar -----------------------------------------------------------------------------------
  const bar = h("div", "sg-bar");
  const filter = h("select", "sg-filter");
  filter.title = "Show only rows of one status";
  for (const name of FILTERS) filter.appendChild(new Option(name, name));
  const search = h("input", "sg-search");
  search.type = "search";
  search.placeholder = "search prompts and responses";
  const rerun = h("button", "sg-btn sg-rerun", "re-run failed");
  rerun.title = "Send only the failed rows again through the same client; they update in place";
  const dfName = h("input", "sg-dfname");
  dfName.value = "grid_df";
  dfName.title = "Variable the DataFrame is bound to";
  const dfButton = h("button", "sg-btn sg-df", "copy as DataFrame");
  dfButton.title = "Bind the current view (filter, search, order) to this variable as a pandas DataFrame";
  const exportPath = h("input", "sg-path");
  exportPath.value = "results.csv";
  exportPath.title = "File the current view is written to (.csv, .parquet or .jsonl)";
  const exportButton = h("button", "sg-btn sg-export", "export");
  exportButton.title = "Write the current view to this file";
  bar.append(filter, search, rerun, dfName, dfButton, exportPath, exportButton);
  const summary = h("div", "sg-summary");
  const message = h("div", "sg-message");

  // -- the list ----------------------------------------------------------------------------------
  const head = h("div", "sg-head");
  const scroller = h("div", "sg-scroll");
  scroller.tabIndex = 0;
  const spacer = h("div", "sg-spacer");
  scroller.appendChild(spacer);
  const detail = h("div", "sg-detail");
  root.append(bar, summary, message, head, scroller, detail);

  let selPos = -1; // view position of the selection, when known
  let pendingPos = -1; // a position the keyboard moved to before its row arrived
  let asked = null;
  let typing = 0; // the debounce timer of a search being typed
  let chosen = null; // a row clicked before the kernel confirmed it as `selected`

  const ask = (changes) => model.send({ ask: changes });

  const columns = () => model.get("columns") || [];
  const template = () => columns().map((c) => c[3]).join(" ");

  function renderHead() {
    head.replaceChildren();
    head.style.gridTemplateColumns = template();
    const by = model.get("sort_by");
    const desc = model.get("sort_desc");
    for (const [key, label, kind] of columns()) {
      const cell = h("div", `sg-hcell sg-${kind}`, label + (key === by ? (desc ? " ▼" : " ▲") : ""));
      cell.dataset.key = key;
      cell.title = `Sort by ${label} (click again to reverse)`;
      cell.addEventListener("click", () => {
        const desc = model.get("sort_by") === key ? !model.get("sort_desc") : false;
        ask({ sort_by: key, sort_desc: desc, viewport: resetScroll() });
      });
      head.appendChild(cell);
    }
  }

  function visibleCount() {
    return Math.max(1, Math.ceil((scroller.clientHeight || model.get("height_rows") * ROW_H) / ROW_H) + 1);
  }

  function request(first) {
    // A view that is not on the page (an output JupyterLab replaced, a hidden tab) must not ask:
    // the window is shared by the model's views, and it would take it from the one in sight.
    if (!scroller.isConnected || scroller.clientHeight === 0) return;
    const size = visibleCount() + 2 * OVERSCAN;
    const start = Math.max(0, first - OVERSCAN);
    if (asked && asked[0] === start && asked[1] === size) return;
    asked = [start, size];
    ask({ viewport: asked });
  }

  function resetScroll() {
    // the viewport to ask for with new criteria: the top of the new view
    scroller.scrollTop = 0;
    selPos = -1;
    asked = [0, visibleCount() + 2 * OVERSCAN];
    return asked;
  }

  function choose(index) {
    chosen = index; // drawn as selected at once; the kernel's `selected` confirms it
    ask({ selected: index });
  }

  function renderRows() {
    const total = model.get("view_size");
    spacer.style.height = `${total * ROW_H}px`;
    const win = model.get("window") || {};
    const ws = win.start || 0;
    const wrows = win.rows || [];
    const first = Math.floor(scroller.scrollTop / ROW_H);
    const from = Math.max(0, first - 2);
    const to = Math.min(total, first + visibleCount() + 2);
    if (pendingPos >= 0 && pendingPos >= ws && pendingPos < ws + wrows.length) {
      const row = wrows[pendingPos - ws];
      selPos = pendingPos;
      pendingPos = -1;
      if (row[0] !== model.get("selected")) choose(row[0]);
    }
    const selected = chosen !== null ? chosen : model.get("selected");
    const gridCols = template();
    const kinds = columns().map((c) => c[2]);
    const frag = document.createDocumentFragment();
    for (let pos = from; pos < to; pos++) {
      const row = wrows[pos - ws];
      const line = h("div", "sg-row");
      line.style.top = `${pos * ROW_H}px`;
      line.style.gridTemplateColumns = gridCols;
      if (row) {
        line.dataset.index = String(row[0]);
        line.dataset.pos = String(pos);
        if (row[0] === selected) {
          line.classList.add("sg-selected");
          selPos = pos;
        }
        row.forEach((value, i) => {
          const cell = h("div", `sg-cell sg-${kinds[i] || "t"}`, String(value));
          if (i === 1) cell.classList.add(`sg-st-${value}`);
          if (kinds[i] === "t" && value) cell.title = String(value);
          line.appendChild(cell);
        });
      } else {
        line.classList.add("sg-loading");
        line.appendChild(h("div", "sg-cell", "…"));
      }
      frag.appendChild(line);
    }
    for (const old of Array.from(spacer.children)) old.remove();
    spacer.appendChild(frag);
    if (total > 0 && (from < ws || to > ws + wrows.length)) request(first);
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
    if (d.index === undefined) {
      detail.appendChild(h("div", "sg-hint", "Click a row (or use ↑ ↓) to see its full prompt and response."));
      return;
    }
    if (d.missing) {
      detail.appendChild(h("div", "sg-hint", `prompt #${d.index}: no row yet`));
      return;
    }
    const top = h("div", "sg-facts");
    top.append(h("b", "", `#${d.index}`), document.createTextNode(" · "), h("b", `sg-st-${d.status}`, d.status));
    for (const [name, value] of d.facts || []) top.appendChild(document.createTextNode(` · ${name} ${value}`));
    detail.appendChild(top);
    detail.append(h("div", "sg-label", "Prompt"), h("pre", "sg-text sg-prompt", d.prompt || ""));
    const title = d.error_type ? `${d.title}: ${d.error_type}` : d.title;
    const answer = h("pre", `sg-text sg-answer${d.error_type !== undefined ? " sg-error" : ""}`, d.text || "");
    detail.append(h("div", "sg-label", title), answer);
    // label -> rows of cells: parsed fields, tool calls (name, id, arguments as sent), choices (n > 1)
    for (const [label, key] of [["Parsed fields", "fields"], ["Tool calls", "tool_calls"], ["Choices", "choices"]]) {
      if (!(d[key] || []).length) continue;
      detail.appendChild(h("div", "sg-label", label));
      const table = h("table", "sg-fields");
      for (const [name, ...values] of d[key]) {
        const tr = h("tr");
        tr.appendChild(h("td", "sg-fname", String(name)));
        for (const value of values) tr.appendChild(h("td", "", value));
        table.appendChild(tr);
      }
      detail.appendChild(table);
    }
  }

  function select(pos) {
    const total = model.get("view_size");
    if (total === 0) return;
    pos = Math.max(0, Math.min(total - 1, pos));
    const top = pos * ROW_H;
    if (top < scroller.scrollTop) scroller.scrollTop = top;
    else if (top + ROW_H > scroller.scrollTop + scroller.clientHeight) {
      scroller.scrollTop = top + ROW_H - scroller.clientHeight;
    }
    pendingPos = pos;
    renderRows();
  }

  // -- events --------------------------------------------------------------------------------------
  let frame = 0;
  const onScroll = () => {
    if (model.get("_view_key")) SCROLLS.set(model.get("_view_key"), scroller.scrollTop);
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      renderRows();
    });
  };
  scroller.addEventListener("scroll", onScroll);
  scroller.addEventListener("click", (event) => {
    const line = event.target.closest(".sg-row");
    if (!line || line.dataset.index === undefined) return;
    selPos = Number(line.dataset.pos);
    scroller.focus();
    choose(Number(line.dataset.index));
    renderRows();
  });
  // The list's keys are taken on the window, in the capture phase: Notebook 7 handles its shortcuts
  // (arrows move between cells) in the document's capture phase, before the list would see them.
  // composedPath() reaches into a shadow root (marimo draws widgets in one).
  const onKey = (event) => {
    if (event.composedPath()[0] !== scroller || event.ctrlKey || event.metaKey || event.altKey) return;
    const page = Math.max(1, visibleCount() - 2);
    const moves = { ArrowDown: 1, ArrowUp: -1, PageDown: page, PageUp: -page };
    const base = selPos >= 0 ? selPos : Math.floor(scroller.scrollTop / ROW_H) - 1;
    if (event.key in moves) select(base + moves[event.key]);
    else if (event.key === "Home") select(0);
    else if (event.key === "End") select(model.get("view_size") - 1);
    else return;
    event.preventDefault();
    event.stopPropagation();
  };
  window.addEventListener("keydown", onKey, true);
  filter.addEventListener("change", () => ask({ status_filter: filter.value, viewport: resetScroll() }));
  search.addEventListener("input", () => {
    clearTimeout(typing);
    const text = search.value;
    typing = setTimeout(() => {
      typing = 0;
      ask({ query: text, viewport: resetScroll() });
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
    renderRows();
  };
  const onRows = () => {
    renderRows();
    renderSummary();
    renderControls();
  };
  const onSize = () => {
    scroller.style.height = `${model.get("height_rows") * ROW_H}px`;
    renderRows();
  };
  const onSelected = () => {
    chosen = null;
    renderRows();
  };
  const handlers = [
    ["change:columns change:sort_by change:sort_desc", onColumns],
    ["change:window change:view_size change:status_counts change:status_filter change:query", onRows],
    ["change:message change:busy change:can_rerun", renderControls],
    ["change:detail", renderDetail],
    ["change:selected", onSelected],
    ["change:height_rows", onSize],
  ];
  // One event name per call: Backbone (Jupyter) splits "a b" into two events, marimo's model does not.
  const each = (verb) => {
    for (const [names, fn] of handlers) for (const name of names.split(" ")) model[verb](name, fn);
  };
  each("on");

  onSize();
  renderHead();
  renderSummary();
  renderControls();
  renderDetail();
  const reopen = (tries) => {
    // back where this grid's last view was, once the list is on the page (it has a height then)
    const top = SCROLLS.get(model.get("_view_key")) || 0;
    if (top > 0 && (!scroller.isConnected || scroller.clientHeight === 0) && tries > 0) {
      requestAnimationFrame(() => reopen(tries - 1));
      return;
    }
    spacer.style.height = `${model.get("view_size") * ROW_H}px`;
    scroller.scrollTop = top;
    renderRows();
  };
  requestAnimationFrame(() => reopen(120));
  return () => {
    each("off");
    scroller.removeEventListener("scroll", onScroll);
    window.removeEventListener("keydown", onKey, true);
  };
}

export default { render };
