// The live panel of seeds_nb (BatchProgress, BatchJobMonitor): title, bar, Cancel button, stats lines.
// Plain DOM, no dependencies, no build step: every value is drawn by the kernel, which pushes it
// (throttled); the only message sent back is a click on Cancel.
function render({ model, el }) {
  const root = document.createElement("div");
  const header = document.createElement("div");
  header.className = "seeds-panel-header";
  const title = document.createElement("b");
  title.className = "seeds-panel-title";
  const bar = document.createElement("div");
  bar.className = "seeds-panel-bar";
  bar.setAttribute("role", "progressbar");
  const fill = document.createElement("div");
  fill.className = "seeds-panel-fill";
  const label = document.createElement("span");
  label.className = "seeds-panel-label";
  bar.append(fill, label);
  const button = document.createElement("button");
  button.type = "button";
  button.className = "seeds-panel-button";
  button.addEventListener("click", () => {
    if (!model.get("button_disabled")) {
      button.disabled = true;  // answered at once; the kernel confirms with button_disabled
      model.send({ event: "cancel" });
    }
  });
  const stats = document.createElement("div");
  stats.className = "seeds-panel-stats";
  header.append(title, bar, button);
  root.append(header, stats);
  el.append(root);

  const draw = () => {
    root.className = `seeds-panel ${model.get("kind")}`;
    const text = model.get("title");
    title.textContent = text;
    title.hidden = !text;
    const max = Math.max(model.get("bar_max"), 1);
    const value = Math.min(Math.max(model.get("bar_value"), 0), max);
    fill.style.width = `${(100 * value) / max}%`;
    fill.className = `seeds-panel-fill seeds-bar-${model.get("bar_style") || "running"}`;
    label.textContent = model.get("bar_label");
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", String(max));
    bar.setAttribute("aria-valuenow", String(value));
    bar.dataset.style = model.get("bar_style");
    button.textContent = model.get("button_label");
    button.title = model.get("button_tooltip");
    button.disabled = model.get("button_disabled");
    stats.innerHTML = model.get("stats");  // built and HTML-escaped by the kernel
  };
  draw();
  model.on("change", draw);
  return () => model.off("change", draw);
}

export default { render };
