// mailzone web UI: progressive enhancement only. Every page works without this file.
// - Copy buttons: `button[data-copy]` put their value on the clipboard.
// - Live parts: elements with an `id` and `data-live="<seconds>"` are refreshed from the
//   same page's current HTML, without a full reload (paused while the tab is hidden or
//   while the user is typing inside the part).
// - Forms with `data-confirm` ask before they are sent.
"use strict";

function enableCopyButtons(root) {
  if (!navigator.clipboard) return;
  for (const button of root.querySelectorAll("button[data-copy]")) {
    button.hidden = false;
    if (button.dataset.bound) continue;
    button.dataset.bound = "1";
    button.addEventListener("click", async () => {
      const label = button.textContent;
      try {
        await navigator.clipboard.writeText(button.dataset.copy);
        button.textContent = "Copied";
      } catch (e) {
        button.textContent = "Copy failed";
      }
      setTimeout(() => { button.textContent = label; }, 1500);
    });
  }
}

function enableConfirmations(root) {
  for (const form of root.querySelectorAll("form[data-confirm]")) {
    if (form.dataset.bound) continue;
    form.dataset.bound = "1";
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
}

async function refreshLiveParts() {
  const parts = [...document.querySelectorAll("[data-live][id]")];
  if (document.hidden || parts.length === 0) return;
  let response;
  try {
    response = await fetch(window.location.href, {
      headers: { "X-Mailzone-Live": "1" },
      credentials: "same-origin",
      redirect: "manual",
    });
  } catch (e) {
    return;
  }
  if (!response.ok) return;
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  for (const part of parts) {
    if (part.contains(document.activeElement) && document.activeElement !== document.body) continue;
    const replacement = fresh.getElementById(part.id);
    if (replacement && replacement.innerHTML !== part.innerHTML) {
      part.replaceWith(replacement);
      enableCopyButtons(replacement);
      enableConfirmations(replacement);
    }
  }
}

function startLiveRefresh() {
  const intervals = [...document.querySelectorAll("[data-live][id]")]
    .map((part) => Number(part.dataset.live) || 5);
  if (intervals.length === 0) return;
  setInterval(refreshLiveParts, Math.max(1, Math.min(...intervals)) * 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  enableCopyButtons(document);
  enableConfirmations(document);
  startLiveRefresh();
});

// Parts loaded after the page: an element with an `id` and `data-src="<url>"` is replaced
// by the element of the same `id` in the page at that URL (the plan and the TLSA status
// ask DNS servers, so the page itself never waits for them). Without scripts, the part
// keeps its link to that page.
async function loadDeferredParts(root) {
  for (const part of root.querySelectorAll("[data-src][id]")) {
    let response;
    try {
      response = await fetch(part.dataset.src, { credentials: "same-origin", redirect: "manual" });
    } catch (e) {
      part.textContent = "Could not load this part: the service did not answer.";
      continue;
    }
    if (!response.ok) {
      part.textContent = "Could not load this part (HTTP " + response.status + ").";
      continue;
    }
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    const replacement = fresh.getElementById(part.id);
    if (replacement) {
      part.replaceWith(replacement);
      enableCopyButtons(replacement);
      enableConfirmations(replacement);
    }
  }
}

document.addEventListener("DOMContentLoaded", () => { loadDeferredParts(document); });
