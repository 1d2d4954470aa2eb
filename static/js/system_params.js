// The system rows of the study admin: when a row's backend changes, its parameters box
// shows that backend's defaults (placeholder) and ranges (tooltip), from the data the
// form put on the box (each backend's own declaration).
document.addEventListener("change", (event) => {
  const select = event.target;
  if (!(select instanceof HTMLSelectElement) || !select.name.endsWith("-backend")) return;
  const box = document.querySelector(
    `textarea[name="${select.name.replace(/-backend$/, "-backend_params")}"]`
  );
  if (!box || !box.dataset.paramDocs) return;
  const docs = JSON.parse(box.dataset.paramDocs)[select.value];
  if (!docs) return;
  box.placeholder = docs.placeholder;
  box.title = docs.title;
});
