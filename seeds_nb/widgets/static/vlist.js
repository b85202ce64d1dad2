// seeds_nb virtual list: the browser side of _vlist.VirtualList, shared by the widgets that list rows.
// Joined in front of a widget's own module by the kernel (no build step, no CDN).
//
// The kernel owns the rows and pushes `window` = {start, rows} for the rows the browser asked for;
// `view_size` is the number of rows in the view. The list has a fixed row height, so the scroll
// position is a row number: only the rows in view are in the DOM. The browser never writes a trait:
// it asks with a custom message ({ask: {viewport}} / {ask: {selected}}), see _vlist.py for why.
// Everything is drawn with textContent: nothing a model or a user wrote can become markup.

// Where each list is scrolled, by its `_view_key`, page-wide: when the kernel updates an output (its
// saved text/html snapshot at the end of a run), JupyterLab and Notebook 7 draw it again as a new
// view, which opens where the old one was instead of at the top.
const VLIST_SCROLLS = (globalThis[Symbol.for("seeds_nb.vlist.scrolls")] ??= new Map());

function vh(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

// The detail pane's hint while no row is chosen, or the chosen row has not arrived yet; true when shown
// (the caller then draws nothing else).
function vlistDetailHint(pane, d, emptyText) {
  if (d.index === undefined) pane.appendChild(vh("div", "sv-hint", emptyText));
  else if (d.missing) pane.appendChild(vh("div", "sv-hint", `prompt #${d.index}: no row yet`));
  else return false;
  return true;
}

// A list in `scroller` (returned): `drawRow(line, row, pos)` fills one row's element; `rowHeight` in px.
function virtualList({ model, rowHeight, overscan = 40, drawRow }) {
  const scroller = vh("div", "sv-scroll");
  scroller.tabIndex = 0;
  const spacer = vh("div", "sv-spacer");
  scroller.appendChild(spacer);
  let selPos = -1; // view position of the selection, when known
  let pendingPos = -1; // a position the keyboard moved to before its row arrived
  let asked = null;
  let chosen = null; // a row clicked before the kernel confirmed it as `selected`

  const ask = (changes) => model.send({ ask: changes });
  const visibleCount = () =>
    Math.max(1, Math.ceil((scroller.clientHeight || model.get("height_rows") * rowHeight) / rowHeight) + 1);
  const viewportFor = (first) => [Math.max(0, first - overscan), visibleCount() + 2 * overscan];

  function request(first) {
    // A view that is not on the page (an output replaced, a hidden tab) must not ask: the window is
    // shared by the model's views, and it would take it from the one in sight.
    if (!scroller.isConnected || scroller.clientHeight === 0) return;
    const want = viewportFor(first);
    if (asked && asked[0] === want[0] && asked[1] === want[1]) return;
    asked = want;
    ask({ viewport: want });
  }

  function render() {
    const total = model.get("view_size");
    spacer.style.height = `${total * rowHeight}px`;
    const win = model.get("window") || {};
    const ws = win.start || 0;
    const wrows = win.rows || [];
    const first = Math.floor(scroller.scrollTop / rowHeight);
    const from = Math.max(0, first - 2);
    const to = Math.min(total, first + visibleCount() + 2);
    if (pendingPos >= 0 && pendingPos >= ws && pendingPos < ws + wrows.length) {
      const row = wrows[pendingPos - ws];
      selPos = pendingPos;
      pendingPos = -1;
      if (row[0] !== model.get("selected")) choose(row[0]);
    }
    const selected = chosen !== null ? chosen : model.get("selected");
    const frag = document.createDocumentFragment();
    for (let pos = from; pos < to; pos++) {
      const row = wrows[pos - ws];
      const line = vh("div", "sv-row");
      line.style.top = `${pos * rowHeight}px`;
      line.style.height = `${rowHeight}px`;
      if (row) {
        line.dataset.index = String(row[0]);
        line.dataset.pos = String(pos);
        if (row[0] === selected) {
          line.classList.add("sv-selected");
          selPos = pos;
        }
        drawRow(line, row, pos);
      } else {
        line.classList.add("sv-loading");
        line.appendChild(vh("div", "sv-cell", "…"));
      }
      frag.appendChild(line);
    }
    spacer.replaceChildren(frag);
    if (total > 0 && (from < ws || to > ws + wrows.length)) request(first);
  }

  function choose(index) {
    chosen = index;
    ask({ selected: index });
  }

  function select(pos) {
    const total = model.get("view_size");
    if (total === 0) return;
    pos = Math.max(0, Math.min(total - 1, pos));
    const top = pos * rowHeight;
    if (top < scroller.scrollTop) scroller.scrollTop = top;
    else if (top + rowHeight > scroller.scrollTop + scroller.clientHeight) {
      scroller.scrollTop = top + rowHeight - scroller.clientHeight;
    }
    pendingPos = pos;
    render();
  }

  // Back to the top (a new order or filter): returns the viewport to ask for with it.
  function reset() {
    scroller.scrollTop = 0;
    selPos = -1;
    asked = viewportFor(0);
    return asked;
  }

  let frame = 0;
  const onScroll = () => {
    if (model.get("_view_key")) VLIST_SCROLLS.set(model.get("_view_key"), scroller.scrollTop);
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      render();
    });
  };
  scroller.addEventListener("scroll", onScroll);
  scroller.addEventListener("click", (event) => {
    const line = event.target.closest(".sv-row");
    if (!line || line.dataset.index === undefined) return;
    selPos = Number(line.dataset.pos);
    scroller.focus();
    choose(Number(line.dataset.index));
    render();
  });
  // The list's keys are taken on the window, in the capture phase: Notebook 7 handles its shortcuts
  // (arrows move between cells) in the document's capture phase, before the list would see them.
  // composedPath() reaches into a shadow root (marimo draws widgets in one).
  const onKey = (event) => {
    if (event.composedPath()[0] !== scroller || event.ctrlKey || event.metaKey || event.altKey) return;
    const page = Math.max(1, visibleCount() - 2);
    const moves = { ArrowDown: 1, ArrowUp: -1, PageDown: page, PageUp: -page };
    const base = selPos >= 0 ? selPos : Math.floor(scroller.scrollTop / rowHeight) - 1;
    if (event.key in moves) select(base + moves[event.key]);
    else if (event.key === "Home") select(0);
    else if (event.key === "End") select(model.get("view_size") - 1);
    else return;
    event.preventDefault();
    event.stopPropagation();
  };
  window.addEventListener("keydown", onKey, true);

  const onSelected = () => {
    chosen = null; // the kernel confirmed (or changed) the selection
    render();
  };
  const onSize = () => {
    scroller.style.height = `${model.get("height_rows") * rowHeight}px`;
    render();
  };
  // one event name per call: marimo's model takes no space-separated list
  const handlers = [["change:window", render], ["change:view_size", render], ["change:selected", onSelected],
    ["change:height_rows", onSize]];
  for (const [name, fn] of handlers) model.on(name, fn);
  scroller.style.height = `${model.get("height_rows") * rowHeight}px`;

  const reopen = (tries) => {
    // back where this list's last view was, once it is on the page (it has a height then)
    const top = VLIST_SCROLLS.get(model.get("_view_key")) || 0;
    if (top > 0 && (!scroller.isConnected || scroller.clientHeight === 0) && tries > 0) {
      requestAnimationFrame(() => reopen(tries - 1));
      return;
    }
    spacer.style.height = `${model.get("view_size") * rowHeight}px`;
    scroller.scrollTop = top;
    render();
  };
  requestAnimationFrame(() => reopen(120));

  const destroy = () => {
    for (const [name, fn] of handlers) model.off(name, fn);
    scroller.removeEventListener("scroll", onScroll);
    window.removeEventListener("keydown", onKey, true);
  };
  return { scroller, render, reset, destroy };
}
