// The Alerts page's silence form: creates and edits silences, and expires them, through
// Alertmanager's API v2 (`/api/v2/silences`), then reloads the page to show the result.
"use strict";

(function () {
  const S = window.Sightline;
  const form = document.getElementById("silence-form");
  const title = document.getElementById("silence-form-title");
  const status = form.querySelector(".form-status");
  const NAME = "sightline-silence-author";

  /** `name="v", other=~"re.*"` (braces optional) as API v2 matchers. */
  function parseMatchers(text) {
    let body = text.trim();
    if (body.startsWith("{") && body.endsWith("}")) body = body.slice(1, -1);
    const parts = [];
    let current = "", quoted = false;
    for (let i = 0; i < body.length; i++) {
      const c = body[i];
      if (c === "\\" && quoted) { current += c + (body[i + 1] || ""); i++; continue; }
      if (c === "\"") quoted = !quoted;
      if (c === "," && !quoted) { parts.push(current); current = ""; continue; }
      current += c;
    }
    parts.push(current);
    const matchers = parts.filter((p) => p.trim()).map((part) => {
      const match = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$/.exec(part);
      if (!match) throw new Error("Cannot read the matcher " + JSON.stringify(part.trim()) + ": write name=\"value\", name!=\"value\", name=~\"regex\" or name!~\"regex\".");
      let value = match[3];
      if (value.startsWith("\"")) {
        try { value = JSON.parse(value); } catch (_) { throw new Error("The value of " + match[1] + " is not a closed, quoted string."); }
      }
      return { name: match[1], value, isRegex: match[2].includes("~"), isEqual: !match[2].startsWith("!") };
    });
    if (!matchers.length) throw new Error("A silence needs at least one matcher.");
    return matchers;
  }

  function say(text, isError) {
    status.textContent = text;
    status.className = "form-status" + (isError ? " error-text" : "");
  }

  form.createdBy.value = localStorage.getItem(NAME) || "";
  if (form.dataset.matchers) {
    form.comment.focus();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const seconds = S.parseDuration(form.duration.value);
      if (!(seconds > 0)) throw new Error("The duration must be such as 30m, 2h or 1d.");
      const now = Date.now();
      const silence = {
        matchers: parseMatchers(form.matchers.value),
        startsAt: new Date(now).toISOString(),
        endsAt: new Date(now + seconds * 1000).toISOString(),
        createdBy: form.createdBy.value.trim(),
        comment: form.comment.value.trim(),
      };
      if (form.silenceId.value) silence.id = form.silenceId.value;
      localStorage.setItem(NAME, silence.createdBy);
      const saved = await S.api("/api/v2/silences", null, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(silence),
      });
      say("Saved silence " + saved.silenceID + ".");
      // A fresh page without the `?silence=` that filled the form in.
      location.replace(location.pathname + "?saved=" + encodeURIComponent(saved.silenceID) + "#silences-h");
    } catch (error) {
      say(error.message, true);
    }
  });

  form.addEventListener("reset", () => {
    form.silenceId.value = "";
    title.textContent = "New silence";
    say("");
  });

  const table = document.getElementById("silences");
  if (table) table.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const row = button.closest("tr");
    if (button.dataset.action === "edit") {
      form.silenceId.value = row.dataset.id;
      form.matchers.value = row.dataset.matchers;
      form.createdBy.value = row.dataset.createdBy;
      form.comment.value = row.dataset.comment;
      const left = (Date.parse(row.dataset.ends) - Date.now()) / 1000;
      form.duration.value = left > 60 ? S.formatDuration(left) : "2h";
      title.textContent = "Edit silence " + row.dataset.id;
      form.scrollIntoView();
      form.matchers.focus();
      return;
    }
    button.disabled = true;
    try {
      await S.api("/api/v2/silence/" + encodeURIComponent(row.dataset.id), null, { method: "DELETE" });
      location.reload();
    } catch (error) {
      button.disabled = false;
      say(error.message, true);
    }
  });
})();
