// Live progress in the admin, without reloading: the study page's status, media and
// vote counts and its recent generation jobs; the job list's progress bars.
const EVERY_MS = 3000;

function poll(update) {
  update();
  setInterval(() => {
    if (!document.hidden) update();
  }, EVERY_MS);
}

async function fetchJson(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  return response.ok ? response.json() : null;
}

function studyPage(panel) {
  poll(async () => {
    const data = await fetchJson(panel.dataset.progressUrl);
    if (!data) return;
    for (const element of panel.querySelectorAll("[data-progress]")) {
      const key = element.dataset.progress;
      if (key === "jobs") {
        element.replaceChildren(
          ...(data.jobs || []).map((job) => {
            const item = document.createElement("li");
            item.textContent = job.text;
            return item;
          }),
        );
      } else if (key in data) {
        element.textContent = data[key];
      }
    }
  });
}

function jobList(cells) {
  const url = new URL("progress/", window.location.href.split("?")[0]);
  url.searchParams.set("ids", [...cells].map((cell) => cell.dataset.job).join(","));
  poll(async () => {
    const data = await fetchJson(url);
    if (!data) return;
    for (const job of data.jobs) {
      const cell = document.querySelector(`[data-job="${job.id}"]`);
      if (!cell) continue;
      const share = job.expected ? (100 * (job.done + job.failed)) / job.expected : 100;
      cell.querySelector("progress").value = Math.round(share);
      cell.querySelector("span").textContent = `${job.done} / ${job.expected}`;
      cell.title = job.text;
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const panel = document.querySelector("[data-progress-url]");
  if (panel) studyPage(panel);
  const cells = document.querySelectorAll("[data-job]");
  if (cells.length) jobList(cells);
});
