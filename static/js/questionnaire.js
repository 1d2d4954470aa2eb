// The end questionnaire: fill in the screen size (optional, like every answer here).
const field = document.querySelector("input[name=screen]");
if (field) field.value = `${window.screen.width}x${window.screen.height}`;
