// Copy buttons and the revision picker. No dependencies, works offline.
"use strict";

function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    return navigator.clipboard.writeText(text);
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  document.execCommand("copy");
  document.body.removeChild(area);
  return Promise.resolve();
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button.copy");
  if (!button) return;
  let text = button.dataset.copy;
  if (button.hasAttribute("data-copy-snippet")) {
    text = button.parentElement.querySelector("[data-load-snippet]").textContent;
  }
  copyText(text).then(() => {
    button.dataset.copied = text;
    const label = button.textContent;
    button.textContent = "Copied!";
    setTimeout(() => { button.textContent = label; }, 1500);
  });
});

document.addEventListener("change", (event) => {
  const select = event.target.closest("[data-revision-select]");
  if (!select) return;
  const form = select.closest("[data-revision-picker]");
  window.location.href = form.dataset.base + encodeURIComponent(select.value);
});
