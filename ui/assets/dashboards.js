// The dashboard list's import form (a file or pasted JSON, posted to Grafana's
// `POST /api/dashboards/db`) and the Delete buttons of imported dashboards.
"use strict";

(function () {
  const S = window.Sightline;
  const form = document.getElementById("import-form");
  const status = form.querySelector(".form-status");
  const say = (text, isError) => {
    status.textContent = text;
    status.className = "form-status" + (isError ? " error-text" : "");
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const file = form.file.files[0];
      const text = file ? await file.text() : form.json.value;
      if (!text.trim()) throw new Error("Choose a dashboard JSON file or paste its JSON.");
      let dashboard;
      try { dashboard = JSON.parse(text); } catch (error) { throw new Error("This is not JSON: " + error.message); }
      if (dashboard.dashboard) dashboard = dashboard.dashboard;
      const saved = await S.api("/api/dashboards/db", null, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ dashboard, folderTitle: form.folder.value.trim(), overwrite: form.overwrite.checked }),
      });
      location.assign(saved.url);
    } catch (error) {
      say(error.message, true);
    }
  });

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-delete]");
    if (!button) return;
    if (!confirm("Delete the dashboard " + button.dataset.title + "?")) return;
    try {
      await S.api("/api/dashboards/uid/" + encodeURIComponent(button.dataset.delete), null, { method: "DELETE" });
      location.reload();
    } catch (error) {
      say(error.message, true);
    }
  });
})();
