// The comparison page: show a pair, preload the next one, take an answer by key or click,
// save it exactly once (a retry reuses its client id) and move on. Answers stay disabled
// until both images are decoded and on screen and the minimum viewing time has passed;
// the response time is measured from that moment.

const config = JSON.parse(document.getElementById("rater-config").textContent);
const $ = (id) => document.getElementById(id);
const el = {
  progressLabel: $("progress-label"),
  progress: $("progress"),
  progressFill: $("progress-fill"),
  banner: $("banner"),
  prompt: $("prompt-text"),
  question: $("question"),
  leftImg: $("left-img"),
  rightImg: $("right-img"),
  answers: $("answers"),
  status: $("status"),
  undo: $("undo"),
  cancelUndo: $("cancel-undo"),
  feedback: $("feedback"),
  feedbackText: $("feedback-text"),
  feedbackNext: $("feedback-next"),
  lightbox: $("lightbox"),
  lightboxLeft: $("lightbox-left"),
  lightboxRight: $("lightbox-right"),
};
const buttons = [...el.answers.querySelectorAll("button[data-answer]")];
const offered = new Set(config.answers.map((a) => a.value));
const keys = new Map(config.answers.map((a) => [a.key, a.value]));
if (offered.has("left")) keys.set("ArrowLeft", "left");
if (offered.has("right")) keys.set("ArrowRight", "right");
const labels = Object.fromEntries(config.answers.map((a) => [a.value, a.label]));
el.answers.style.setProperty("--viewing-ms", `${config.min_viewing_ms}ms`);

let queue = []; // open pairs from the server: [on screen, next]
let current = null; // the pair on screen
let shownAt = 0; // performance.now() when both images were painted
let ready = false; // answers enabled
let busy = false; // a save is in flight
let previous = null; // { comparison, answer } of the last answered real pair
let resumeAfterUndo = null; // the pair to go back to after a correction
let afterFeedback = null; // what to do once practice feedback is read
let session = config.session;
const decoded = new Map(); // url -> Promise resolving once the image is decoded

function preload(url) {
  if (!decoded.has(url)) {
    const image = new Image();
    image.src = url;
    // A failed load is not remembered: the next pair showing this image tries again.
    decoded.set(
      url,
      image.decode().catch((error) => {
        decoded.delete(url);
        throw error;
      }),
    );
  }
  return decoded.get(url);
}

const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function uuid4() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // Pages on plain http outside localhost have no randomUUID.
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function say(text) {
  el.status.textContent = text;
}

function setEnabled(enabled) {
  ready = enabled;
  for (const button of buttons) button.disabled = !enabled;
  el.answers.classList.toggle("waiting", !enabled);
}

function showProgress(progress, comparison) {
  const practising = comparison?.practice;
  const done = practising ? progress.practice_done : progress.done;
  const total = practising ? progress.practice_total : progress.total;
  const position = Math.min(done + 1, total);
  el.progressLabel.textContent = practising
    ? `Practice ${position} of ${total}`
    : `Pair ${position} of ${total}`;
  el.progress.setAttribute("aria-valuemax", String(total));
  el.progress.setAttribute("aria-valuenow", String(done));
  el.progressFill.style.width = `${total ? (100 * done) / total : 0}%`;
}

async function show(comparison, { correcting = false } = {}) {
  current = comparison;
  setEnabled(false);
  for (const button of buttons) {
    button.classList.remove("chosen");
    button.classList.toggle("previous", correcting && button.dataset.answer === previous?.answer);
  }
  el.prompt.textContent = comparison.prompt;
  el.question.textContent = comparison.question;
  showProgress(session.progress, comparison);
  el.banner.hidden = !(comparison.practice || correcting);
  if (comparison.practice) el.banner.textContent = "Practice pair: you will see whether you chose well.";
  if (correcting) {
    el.banner.textContent = `Changing your previous answer (you chose “${labels[previous.answer]}”). Choose again.`;
  }
  el.leftImg.removeAttribute("src");
  el.rightImg.removeAttribute("src");
  try {
    await Promise.all([preload(comparison.left.url), preload(comparison.right.url)]);
  } catch (error) {
    if (current === comparison && !correcting) await reportLoadFailure(comparison, error);
    return;
  }
  if (current !== comparison) return;
  el.leftImg.src = comparison.left.url;
  el.rightImg.src = comparison.right.url;
  try {
    await Promise.all([el.leftImg.decode(), el.rightImg.decode()]);
  } catch (error) {
    if (current === comparison && !correcting) await reportLoadFailure(comparison, error);
    return;
  }
  await nextFrame();
  await nextFrame();
  if (current !== comparison) return;
  shownAt = performance.now();
  // Preload the next pair while this one is looked at.
  const next = queue.find((c) => c.id !== comparison.id);
  if (next) {
    preload(next.left.url).catch(() => {});
    preload(next.right.url).catch(() => {});
  }
  const wait = correcting ? 0 : config.min_viewing_ms;
  setTimeout(() => {
    if (current !== comparison || busy) return;
    setEnabled(true);
    if (early) say("You can answer now.");
    early = false;
    // The moment answers open is visible: the buttons light up once.
    restartAnimation(el.answers, "opened");
  }, wait);
}

// A key pressed before answers open is acknowledged, not silently dropped.
let early = false;
function tooEarly() {
  early = true;
  say("Answers open in a moment: look at both images first.");
  restartAnimation(el.answers, "nudge");
}

function restartAnimation(element, name) {
  element.classList.remove(name);
  void element.offsetWidth; // a reflow, so that the same animation can run again
  element.classList.add(name);
}

function applySession(next) {
  session = next;
  if (session.finished) {
    say("All done, thank you. One moment…");
    window.location.assign(session.next_url);
    return;
  }
  queue = session.comparisons;
  if (!queue.length) {
    setEnabled(false);
    el.banner.hidden = false;
    el.banner.textContent =
      "The study is paused. Your answers are saved; please come back later with the same link.";
    return;
  }
  if (!current || queue[0].id !== current.id || resumeAfterUndo) {
    resumeAfterUndo = null;
    show(queue[0]);
  } else {
    showProgress(session.progress, current);
  }
}

async function post(url, body) {
  // Network errors and 5xx are retried with the same body, so the same client id:
  // the server stores the vote once whatever happens to the responses.
  for (let attempt = 0; ; attempt += 1) {
    try {
      const response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": config.csrf_token },
        body: JSON.stringify(body),
      });
      if (response.status < 500) return response;
      throw new Error(`server error ${response.status}`);
    } catch (error) {
      if (attempt >= 7) throw error;
      say("Connection problem: trying again…");
      await sleep(Math.min(500 * 2 ** attempt, 8000));
    }
  }
}

async function reportLoadFailure(comparison, error) {
  say("An image did not load; here is another pair.");
  const response = await post(config.urls.load_failures, {
    assignment: comparison.id,
    detail: String(error?.message || error || "decode failed").slice(0, 300),
  });
  if (response.ok) {
    current = null;
    applySession((await response.json()).session);
  }
}

async function choose(answer) {
  if (!ready || busy || !current || !offered.has(answer)) return;
  const comparison = current;
  const correcting = resumeAfterUndo !== null;
  busy = true;
  setEnabled(false);
  buttons.find((b) => b.dataset.answer === answer)?.classList.add("chosen");
  say("Saving…");
  const body = {
    assignment: comparison.id,
    answer,
    response_ms: Math.round(performance.now() - shownAt),
    client_id: uuid4(),
    correction: correcting,
  };
  let response;
  try {
    response = await post(config.urls.votes, body);
  } catch {
    busy = false;
    say("Your answer could not be saved. Check your connection, then choose again.");
    setEnabled(true);
    return;
  }
  busy = false;
  const data = await response.json();
  if (!response.ok) {
    say(data.detail || "That answer was not accepted.");
    if (response.status === 409) await refresh();
    else setEnabled(true);
    return;
  }
  say(correcting ? "Your previous answer was changed." : "");
  el.undo.hidden = true;
  el.cancelUndo.hidden = true;
  if (correcting) {
    previous = null;
  } else if (!comparison.practice) {
    previous = { comparison, answer };
    el.undo.hidden = false;
  }
  if (data.feedback) {
    afterFeedback = () => applySession(data.session);
    const side = data.feedback.expected === "left" ? "left" : "right";
    // The explanation is the material's own, in the words of the question asked; a pair
    // without one still names the question, never a reason that belongs to another.
    const why =
      data.feedback.explanation ||
      `The ${side} image is the better answer to “${data.feedback.question}”.`;
    el.feedback.className = `feedback ${data.feedback.correct ? "correct" : "wrong"}`;
    el.feedbackText.textContent = data.feedback.correct
      ? `Correct. ${why}`
      : `Not quite: the ${side} image was the better answer. ${why}`;
    el.feedback.hidden = false;
    el.feedbackNext.focus();
    return;
  }
  applySession(data.session);
}

// Serving pairs is a POST; the page's GET only read the session.
async function refresh() {
  let response;
  try {
    response = await post(config.urls.session, {});
  } catch {
    say("The next pair could not be loaded. Check your connection, then reload the page.");
    return;
  }
  if (response.ok) {
    current = null;
    applySession(await response.json());
  }
}

function continueAfterFeedback() {
  el.feedback.hidden = true;
  const next = afterFeedback;
  afterFeedback = null;
  next?.();
}

function startUndo() {
  if (!previous || busy || resumeAfterUndo) return;
  resumeAfterUndo = current;
  el.undo.hidden = true;
  el.cancelUndo.hidden = false;
  show(previous.comparison, { correcting: true });
}

function cancelUndo() {
  if (!resumeAfterUndo) return;
  const back = resumeAfterUndo;
  resumeAfterUndo = null;
  el.cancelUndo.hidden = true;
  el.undo.hidden = false;
  show(back);
}

function openLightbox(side) {
  if (!current) return;
  el.lightboxLeft.src = current.left.url;
  el.lightboxRight.src = current.right.url;
  el.lightboxLeft.parentElement.hidden = side === "right";
  el.lightboxRight.parentElement.hidden = side === "left";
  el.lightbox.classList.toggle("single", Boolean(side));
  el.lightbox.hidden = false;
}

const closeLightbox = () => {
  el.lightbox.hidden = true;
};

for (const button of buttons) button.addEventListener("click", () => choose(button.dataset.answer));
$("left-zoom").addEventListener("click", () => openLightbox("left"));
$("right-zoom").addEventListener("click", () => openLightbox("right"));
el.lightbox.addEventListener("click", closeLightbox);
el.undo.addEventListener("click", startUndo);
el.cancelUndo.addEventListener("click", cancelUndo);
el.feedbackNext.addEventListener("click", continueAfterFeedback);

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (!el.feedback.hidden) {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      continueAfterFeedback();
    }
    return;
  }
  if (event.key === "Escape") {
    if (!el.lightbox.hidden) closeLightbox();
    else cancelUndo();
    return;
  }
  if (event.key === "e" || event.key === "E") {
    if (el.lightbox.hidden) openLightbox(null);
    else closeLightbox();
    return;
  }
  if (event.key === "u" || event.key === "U") {
    startUndo();
    return;
  }
  const answer = keys.get(event.key);
  if (answer) {
    event.preventDefault();
    closeLightbox();
    if (!ready && !busy) tooEarly();
    else choose(answer);
  }
});

refresh();
