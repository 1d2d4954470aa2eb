// The completion page: copy the code.
const button = document.getElementById("copy-code");
button?.addEventListener("click", async () => {
  const code = document.getElementById("completion-code").textContent;
  try {
    await navigator.clipboard.writeText(code);
    button.textContent = "Copied";
  } catch {
    window.getSelection().selectAllChildren(document.getElementById("completion-code"));
    button.textContent = "Press Ctrl+C";
  }
});
