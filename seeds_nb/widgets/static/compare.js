// seeds_nb CompareGrid: the same prompts through several clients, answers side by side (anywidget ES
// module, no build step; the list is virtualList from vlist.js, joined in front of this file).
//
// The kernel pushes `clients` (one progress line and summary per client), `names` (the columns) and
// the window of rows: [index, prompt, [text, status] per client]. A click on a row asks for its
// detail: the full prompt and each client's full answer (or error with its type) with its numbers.

const CMP_ROW_H = 40;

function render({ model, el }) {
  el.classList.add("seeds-compare", "seeds-vlist");
  const progress = vh("div", "sc-progress");
  const message = vh("div", "sc-message");
  const head = vh("div", "sv-head");
  const summary = vh("div", "sc-summary");
  const detail = vh("div", "sc-detail");
  const names = () => model.get("names") || [];
  const template = () => `4em minmax(8em,1.2fr) repeat(${Math.max(names().length, 1)}, minmax(10em,2fr))`;

  const list = virtualList({
    model,
    rowHeight: CMP_ROW_H,
    drawRow(line, row) {
      line.style.gridTemplateColumns = template();
      line.appendChild(vh("div", "sv-cell sv-n", String(row[0])));
      const prompt = vh("div", "sv-cell sc-prompt", row[1]);
      prompt.title = row[1];
      line.appendChild(prompt);
      for (const [text, status] of row.slice(2)) {
        const cell = vh("div", `sv-cell sc-answer-cell sv-st-${status}`, status === "waiting" ? "…" : text);
        if (status === "ok" || status === "cached") cell.classList.remove(`sv-st-${status}`);
        if (status === "cached") cell.title = "(cached) " + text;
        else if (text) cell.title = text;
        cell.dataset.status = status;
        line.appendChild(cell);
      }
    },
  });
  el.append(progress, message, head, summary, list.scroller, detail);

  function renderHead() {
    head.replaceChildren();
    head.style.gridTemplateColumns = template();
    for (const label of ["#", "prompt", ...names()]) {
      const cell = vh("div", "sv-hcell", label);
      cell.title = label;
      head.appendChild(cell);
    }
  }

  function renderClients() {
    const clients = model.get("clients") || [];
    progress.replaceChildren();
    summary.replaceChildren();
    summary.style.gridTemplateColumns = template();
    summary.append(vh("div", "sv-cell"), vh("div", "sv-cell", "summary"));
    for (const c of clients) {
      const line = vh("div", "sc-line");
      line.dataset.name = c.name;
      const bar = vh("span", "sc-bar");
      const fill = vh("span", "sc-fill");
      fill.style.width = `${Math.min(c.share, 1) * 100}%`;
      fill.style.background = c.color;
      bar.appendChild(fill);
      const state = vh("span", "sc-state", c.state);
      state.style.color = c.color;
      const failed = vh("span", c.failed ? "sv-st-failed" : "", c.stats[1]);
      line.append(vh("span", "sc-name", c.name), bar, vh("span", "sc-count", c.count), document.createTextNode("·"),
        state, document.createTextNode(`· ${c.stats[0]} ·`), failed,
        document.createTextNode(`· ${c.stats.slice(2).join(" · ")}`));
      progress.appendChild(line);
      const cell = vh("div", "sv-cell sc-sum");
      cell.dataset.name = c.name;
      cell.append(document.createTextNode(`${c.stats[0]} · `), vh("span", c.failed ? "sv-st-failed" : "", c.stats[1]),
        document.createTextNode(` · ${c.stats.slice(2).join(" · ")}`));
      summary.appendChild(cell);
    }
    message.textContent = model.get("message") || "";
  }

  function renderDetail() {
    const d = model.get("detail") || {};
    detail.replaceChildren();
    if (vlistDetailHint(detail, d, "Click a row (or use ↑ ↓) to read every answer to its prompt in full.")) return;
    detail.append(vh("b", "", `#${d.index}`), vh("div", "sv-label", "Prompt"), vh("pre", "sv-text sc-full-prompt", d.prompt || ""));
    const answers = vh("div", "sc-answers");
    answers.style.gridTemplateColumns = `repeat(${Math.max((d.answers || []).length, 1)}, minmax(0, 1fr))`;
    for (const a of d.answers || []) {
      const box = vh("div", "sc-answer");
      box.dataset.name = a.name;
      const top = vh("div", "sv-label");
      top.append(vh("span", "", a.name), document.createTextNode(" · "), vh("span", `sv-st-${a.status}`, a.status));
      box.appendChild(top);
      const facts = (a.facts || []).map(([k, v]) => `${k} ${v}`).join(" · ");
      if (facts) box.appendChild(vh("div", "sc-facts", facts));
      const title = a.error_type ? `${a.title}: ${a.error_type}` : a.title;
      box.appendChild(vh("div", "sv-label", title));
      box.appendChild(vh("pre", `sv-text sc-text${a.error_type !== undefined ? " sv-error" : ""}`, a.text || ""));
      answers.appendChild(box);
    }
    detail.appendChild(answers);
  }

  const onNames = () => {
    renderHead();
    renderClients();
    list.render();
  };
  const handlers = [["change:names", onNames], ["change:clients", renderClients], ["change:message", renderClients],
    ["change:detail", renderDetail]];
  for (const [name, fn] of handlers) model.on(name, fn);
  renderHead();
  renderClients();
  renderDetail();
  return () => {
    for (const [name, fn] of handlers) model.off(name, fn);
    list.destroy();
  };
}

export default { render };
