// The comparison page: show a pair, preload the next one, take an answer by key or click,
// save it exactly once (a retry reuses its client id) and move on. Answers stay disabled
// until both media are on screen (a video pair: until both have played through once) and
// the minimum viewing time has passed; the response time is measured from that moment.
// A video pair plays in lock-step: the longer clip leads, the other follows and is snapped
// to it whenever they drift more than 40 ms apart (reference/BROWSER-VIDEO.md §3).
// A real-or-generated study (config.single) shows one image per screen; with an exposure
// time the image is covered that long after it is painted, and answers open then.

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
  leftVideo: $("left-video"),
  rightVideo: $("right-video"),
  pair: $("pair"),
  videoControls: $("video-controls"),
  playPause: $("play-pause"),
  replay: $("replay"),
  videoNote: $("video-note"),
  questions: $("questions"),
  flag: $("flag"),
  flagOpen: $("flag-open"),
  flagCancel: $("flag-cancel"),
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
// Every answer button on the page: the single row, or one row per question of a screen.
const allButtons = () => [...document.querySelectorAll("#rate button[data-answer]")];
const offered = new Set(config.answers.map((a) => a.value));
const keys = new Map(config.answers.map((a) => [a.key, a.value]));
if (offered.has("left")) keys.set("ArrowLeft", "left");
if (offered.has("right")) keys.set("ArrowRight", "right");
// Letter keys (R real, G generated) in either case, and a second digit or letter.
for (const a of config.answers) {
  for (const key of [a.key, a.alt]) {
    if (/^[A-Z]$/.test(key || "")) {
      keys.set(key, a.value);
      keys.set(key.toLowerCase(), a.value);
    } else if (/^[0-9]$/.test(key || "")) keys.set(key, a.value);
  }
}
const single = Boolean(config.single);
const unit = single ? "image" : "pair";
let coverTimer = null;
const labels = Object.fromEntries(config.answers.map((a) => [a.value, a.label]));
el.answers.style.setProperty("--viewing-ms", `${(single && config.exposure_ms) || config.min_viewing_ms}ms`);

let queue = []; // open pairs from the server: [on screen, next]
let current = null; // the pair on screen
let shownAt = 0; // performance.now() when both images were painted
let ready = false; // answers enabled
let busy = false; // a save is in flight
let previous = null; // { comparison, answer } of the last answered real pair
let resumeAfterUndo = null; // the pair to go back to after a correction
let afterFeedback = null; // what to do once practice feedback is read
let session = config.session;
let chosen = new Map(); // question id -> answer, on a screen of several questions
const decoded = new Map(); // url -> Promise resolving once the image is decoded

function preload(url, kind = "image") {
  if (kind === "video") return preloadVideo(url);
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

// A detached player fetches the next pair's clip into the cache while this one plays.
function preloadVideo(url) {
  if (!decoded.has(url)) {
    const video = document.createElement("video");
    video.muted = true;
    video.preload = "auto";
    video.src = url;
    decoded.set(
      url,
      playable(video).catch((error) => {
        decoded.delete(url);
        throw error;
      }),
    );
  }
  return decoded.get(url);
}

// Resolves once the player can play to the end without stopping to buffer.
function playable(video) {
  return new Promise((resolve, reject) => {
    if (video.readyState >= 4) {
      resolve();
      return;
    }
    const done = () => {
      off();
      resolve();
    };
    const fail = () => {
      off();
      reject(new Error(`the video did not load (error ${video.error?.code ?? "unknown"})`));
    };
    const off = () => {
      video.removeEventListener("canplaythrough", done);
      video.removeEventListener("error", fail);
    };
    video.addEventListener("canplaythrough", done);
    video.addEventListener("error", fail);
  });
}

// Two players driven as one. The longer clip leads; each of its frames, the follower is
// snapped to its time when they are more than DRIFT_S apart. Play, pause, replay and the
// loop (on the leader's end: both back to the start) always move both.
const DRIFT_S = 0.04;
const sync = {
  leader: null,
  follower: null,
  playing: false,
  loops: 0,
  playedThrough: Promise.resolve(),
  reached: null,
  watching: 0,

  start(left, right) {
    this.stop();
    const leftLeads = (left.duration || 0) >= (right.duration || 0);
    this.leader = leftLeads ? left : right;
    this.follower = leftLeads ? right : left;
    this.loops = 0;
    this.playedThrough = new Promise((resolve) => {
      this.reached = resolve;
    });
    this.leader.onended = () => this.loop();
    this.play();
  },
  both() {
    return [this.leader, this.follower].filter(Boolean);
  },
  play() {
    if (!this.leader) return;
    this.playing = true;
    // Both in the same task, so they start on the same clock.
    for (const video of this.both()) video.play().catch(() => {});
    this.watch();
    el.playPause.firstChild.textContent = "Pause ";
  },
  pause() {
    if (!this.leader) return;
    this.playing = false;
    for (const video of this.both()) video.pause();
    this.snap();
    el.playPause.firstChild.textContent = "Play ";
  },
  toggle() {
    if (this.playing) this.pause();
    else this.play();
  },
  replay() {
    if (!this.leader) return;
    for (const video of this.both()) video.currentTime = 0;
    this.play();
  },
  loop() {
    this.loops += 1;
    this.reached?.();
    for (const video of this.both()) video.currentTime = 0;
    if (this.playing) this.play();
  },
  snap() {
    const time = this.leader.currentTime;
    if (time < this.follower.duration) this.follower.currentTime = time;
  },
  watch() {
    const token = ++this.watching;
    const leader = this.leader;
    const next = (check) =>
      leader.requestVideoFrameCallback
        ? leader.requestVideoFrameCallback(check)
        : requestAnimationFrame(check);
    const check = () => {
      if (token !== this.watching || !this.playing || leader !== this.leader) return;
      const follower = this.follower;
      const time = leader.currentTime;
      // A shorter follower waits on its last frame until the leader loops.
      if (!leader.seeking && !follower.seeking && time < follower.duration - DRIFT_S) {
        if (follower.paused && !leader.paused) follower.play().catch(() => {});
        if (Math.abs(follower.currentTime - time) > DRIFT_S) follower.currentTime = time;
      }
      next(check);
    };
    next(check);
  },
  stop() {
    this.watching += 1;
    this.playing = false;
    for (const video of this.both()) {
      video.onended = null;
      video.pause();
    }
    this.leader = this.follower = null;
  },
};

function clearVideos() {
  sync.stop();
  for (const video of [el.leftVideo, el.rightVideo]) {
    video.removeAttribute("src");
    video.removeAttribute("poster");
    video.load();
  }
}

function showKind(video) {
  el.leftImg.hidden = el.rightImg.hidden = video;
  el.leftVideo.hidden = el.rightVideo.hidden = !video;
  el.videoControls.hidden = !video;
  el.pair.classList.toggle("videos", video);
  if (!video) {
    el.pair.classList.remove("enlarged");
    clearVideos();
  }
}

async function showImages(comparison) {
  el.leftImg.removeAttribute("src");
  el.rightImg.removeAttribute("src");
  if (single) {
    await preload(comparison.left.url);
    if (current !== comparison) return;
    el.leftImg.src = comparison.left.url;
    await el.leftImg.decode();
    return;
  }
  await Promise.all([preload(comparison.left.url), preload(comparison.right.url)]);
  if (current !== comparison) return;
  el.leftImg.src = comparison.left.url;
  el.rightImg.src = comparison.right.url;
  await Promise.all([el.leftImg.decode(), el.rightImg.decode()]);
}

async function showVideos(comparison) {
  clearVideos();
  const sides = [
    [el.leftVideo, comparison.left],
    [el.rightVideo, comparison.right],
  ];
  for (const [video, medium] of sides) {
    if (medium.poster) video.poster = medium.poster;
    video.src = medium.url;
  }
  await Promise.all(sides.map(([video]) => playable(video)));
  if (current !== comparison) return;
  sync.start(el.leftVideo, el.rightVideo);
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
  for (const button of allButtons()) button.disabled = !enabled;
  el.answers.classList.toggle("waiting", !enabled);
  for (const row of el.questions.querySelectorAll(".answers")) row.classList.toggle("waiting", !enabled);
}

// A screen of several questions (all criteria on one screen): a row of answers for each,
// answered in turn by key or in any order by click; the screen is sent once all are in.
function renderQuestions(comparison) {
  chosen = new Map();
  el.questions.replaceChildren();
  const many = comparison.questions.length > 1;
  el.questions.hidden = !many;
  el.question.hidden = many;
  el.answers.hidden = many;
  if (!many) return;
  for (const item of comparison.questions) {
    const row = document.createElement("li");
    row.className = "question-row";
    row.dataset.id = item.id;
    const text = document.createElement("p");
    text.className = "question";
    text.textContent = item.question;
    const answers = document.createElement("div");
    answers.className = "answers waiting";
    answers.style.setProperty("--viewing-ms", `${config.min_viewing_ms}ms`);
    for (const answer of config.answers) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = `answer answer-${answer.value}`;
      button.dataset.answer = answer.value;
      button.disabled = true;
      const key = document.createElement("kbd");
      key.textContent = answer.key;
      button.append(key, ` ${answer.label}`);
      button.addEventListener("click", () => pick(item.id, answer.value));
      answers.append(button);
    }
    row.append(text, answers);
    el.questions.append(row);
  }
}

function pick(questionId, answer) {
  if (!questionId || !ready || busy || !current || !offered.has(answer)) return;
  chosen.set(questionId, answer);
  for (const row of el.questions.children) {
    const mine = chosen.get(row.dataset.id);
    row.classList.toggle("answered", Boolean(mine));
    for (const button of row.querySelectorAll("button[data-answer]")) {
      button.classList.toggle("chosen", button.dataset.answer === mine);
    }
  }
  if (current.questions.every((item) => chosen.has(item.id))) choose(null);
  else say(`${chosen.size} of ${current.questions.length} answered.`);
}

function nextQuestion() {
  return current?.questions.find((item) => !chosen.has(item.id));
}

function showProgress(progress, comparison) {
  const practising = comparison?.practice;
  const done = practising ? progress.practice_done : progress.done;
  const total = practising ? progress.practice_total : progress.total;
  const position = Math.min(done + 1, total);
  const noun = single ? "Image" : "Pair";
  el.progressLabel.textContent = practising
    ? `Practice ${position} of ${total}`
    : `${noun} ${position} of ${total}`;
  el.progress.setAttribute("aria-valuemax", String(total));
  el.progress.setAttribute("aria-valuenow", String(done));
  el.progressFill.style.width = `${total ? (100 * done) / total : 0}%`;
}

async function show(comparison, { correcting = false } = {}) {
  current = comparison;
  closeFlag();
  setEnabled(false);
  for (const button of buttons) {
    button.classList.remove("chosen");
    button.classList.toggle("previous", correcting && button.dataset.answer === previous?.answer);
  }
  el.prompt.textContent = comparison.prompt;
  el.question.textContent = comparison.question;
  renderQuestions(comparison);
  showProgress(session.progress, comparison);
  el.banner.hidden = !(comparison.practice || correcting);
  if (comparison.practice) el.banner.textContent = `Practice ${unit}: you will see whether you chose well.`;
  clearTimeout(coverTimer);
  // A correction is no second look: a limited-exposure image stays covered.
  el.pair.classList.toggle("covered", Boolean(correcting && comparison.exposure_ms));
  if (correcting) {
    el.banner.textContent = `Changing your previous answer (you chose “${previous.label}”). Choose again.`;
  }
  const video = comparison.left.kind === "video";
  showKind(video);
  try {
    if (video) await showVideos(comparison);
    else await showImages(comparison);
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
    preload(next.left.url, next.left.kind).catch(() => {});
    if (!single) preload(next.right.url, next.right.kind).catch(() => {});
  }
  // A limited exposure: the image is covered once it has been shown that long, and
  // answers open then (the response time still counts from when it appeared).
  const exposure = comparison.exposure_ms || 0;
  if (exposure && !correcting) {
    coverTimer = setTimeout(() => {
      if (current === comparison) el.pair.classList.add("covered");
    }, exposure);
  }
  const wait = sleep(correcting ? 0 : exposure || config.min_viewing_ms);
  // A video pair is judged once both clips have been seen whole.
  el.videoNote.hidden = !video || correcting;
  await Promise.all([wait, video && !correcting ? sync.playedThrough : null]);
  if (current !== comparison || busy) return;
  el.videoNote.hidden = true;
  setEnabled(true);
  if (early) say("You can answer now.");
  early = false;
  // The moment answers open is visible: the buttons light up once.
  restartAnimation(el.answers, "opened");
}

// A key pressed before answers open is acknowledged, not silently dropped.
let early = false;
function tooEarly() {
  early = true;
  say(single ? "Answers open in a moment: look at the image first." : "Answers open in a moment: look at both images first.");
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
  say(`${comparison.left.kind === "video" ? "A video" : "An image"} did not load; here is another ${unit}.`);
  const response = await post(config.urls.load_failures, {
    assignment: comparison.id,
    detail: String(error?.message || error || "decode failed").slice(0, 300),
  });
  if (response.ok) {
    current = null;
    applySession((await response.json()).session);
  }
}

// One answer (``answer``), or with ``answer`` null the screen's answers to its questions.
async function choose(answer) {
  if (!ready || busy || !current) return;
  if (answer !== null && !offered.has(answer)) return;
  const comparison = current;
  const correcting = resumeAfterUndo !== null;
  const answers = answer === null ? comparison.questions.map((item) => chosen.get(item.id)) : [answer];
  busy = true;
  setEnabled(false);
  if (answer !== null) buttons.find((b) => b.dataset.answer === answer)?.classList.add("chosen");
  say("Saving…");
  const body = {
    response_ms: Math.round(performance.now() - shownAt),
    client_id: uuid4(),
    correction: correcting,
  };
  if (answer === null) {
    body.answers = comparison.questions.map((item, i) => ({ assignment: item.id, answer: answers[i] }));
  } else {
    body.assignment = comparison.id;
    body.answer = answer;
  }
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
    else {
      chosen = new Map();
      renderQuestions(comparison);
      setEnabled(true);
    }
    return;
  }
  say(correcting ? "Your previous answer was changed." : "");
  el.undo.hidden = true;
  el.cancelUndo.hidden = true;
  if (correcting) {
    previous = null;
  } else if (!comparison.practice) {
    previous = { comparison, answer, label: answers.map((value) => labels[value]).join(", ") };
    el.undo.hidden = false;
  }
  if (data.feedback && single) {
    afterFeedback = () => applySession(data.session);
    // The image shows again, uncovered, while its truth is read.
    clearTimeout(coverTimer);
    el.pair.classList.remove("covered");
    el.feedback.className = `feedback ${data.feedback.correct ? "correct" : "wrong"}`;
    el.feedbackText.textContent = `${data.feedback.correct ? "Correct." : "Not quite."} ${data.feedback.explanation}`;
    el.feedback.hidden = false;
    el.feedbackNext.focus();
    return;
  }
  if (data.feedback) {
    afterFeedback = () => applySession(data.session);
    const side = data.feedback.expected === "left" ? "left" : "right";
    // The explanation is the material's own, in the words of the question asked; a pair
    // without one still names the question, never a reason that belongs to another.
    const noun = comparison.left.kind === "video" ? "video" : "image";
    const why =
      data.feedback.explanation ||
      `The ${side} ${noun} is the better answer to “${data.feedback.question}”.`;
    el.feedback.className = `feedback ${data.feedback.correct ? "correct" : "wrong"}`;
    el.feedbackText.textContent = data.feedback.correct
      ? `Correct. ${why}`
      : `Not quite: the ${side} ${noun} was the better answer. ${why}`;
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
    say(`The next ${unit} could not be loaded. Check your connection, then reload the page.`);
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
  // A limited exposure is part of the task: nothing to enlarge.
  if (single && current.exposure_ms) return;
  if (single) side = "left";
  if (current.left.kind === "video") {
    el.pair.classList.toggle("enlarged");
    return;
  }
  el.lightboxLeft.src = current.left.url;
  el.lightboxRight.src = current.right.url;
  el.lightboxLeft.parentElement.hidden = side === "right";
  el.lightboxRight.parentElement.hidden = side === "left";
  el.lightbox.classList.toggle("single", Boolean(side));
  el.lightbox.hidden = false;
}

const closeLightbox = () => {
  el.lightbox.hidden = true;
  el.pair.classList.remove("enlarged");
};

// Report a problem: the pair is flagged and replaced by the next one.
function openFlag() {
  if (!current || busy || !el.feedback.hidden) return;
  el.flag.hidden = false;
  el.flag.querySelector("input[name=reason]:checked")?.focus();
}

function closeFlag() {
  el.flag.hidden = true;
}

async function sendFlag(event) {
  event.preventDefault();
  if (!current || busy) return;
  const comparison = current;
  const form = new FormData(el.flag);
  busy = true;
  setEnabled(false);
  say("Reporting…");
  let response;
  try {
    response = await post(config.urls.flags, {
      assignment: comparison.id,
      reason: form.get("reason"),
      side: form.get("side"),
    });
  } catch {
    busy = false;
    say("The report could not be sent. Check your connection, then try again.");
    setEnabled(true);
    return;
  }
  busy = false;
  const data = await response.json();
  closeFlag();
  if (!response.ok) {
    say(data.detail || "That report was not accepted.");
    setEnabled(true);
    return;
  }
  say(`Thank you: the ${unit} was reported. Here is another one.`);
  current = null;
  applySession(data.session);
}

for (const button of buttons) button.addEventListener("click", () => choose(button.dataset.answer));
$("left-zoom").addEventListener("click", () => openLightbox("left"));
$("right-zoom").addEventListener("click", () => openLightbox("right"));
el.lightbox.addEventListener("click", closeLightbox);
el.undo.addEventListener("click", startUndo);
el.cancelUndo.addEventListener("click", cancelUndo);
el.feedbackNext.addEventListener("click", continueAfterFeedback);
el.flagOpen.addEventListener("click", openFlag);
el.flagCancel.addEventListener("click", closeFlag);
el.flag.addEventListener("submit", sendFlag);
el.playPause.addEventListener("click", () => sync.toggle());
el.replay.addEventListener("click", () => sync.replay());

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
    if (!el.flag.hidden) closeFlag();
    else if (!el.lightbox.hidden || el.pair.classList.contains("enlarged")) closeLightbox();
    else cancelUndo();
    return;
  }
  // The report form takes its own keys (arrows move between its choices).
  if (!el.flag.hidden) return;
  if (event.key === "f" || event.key === "F") {
    event.preventDefault();
    openFlag();
    return;
  }
  if (current?.left.kind === "video") {
    if (event.key === " ") {
      event.preventDefault();
      sync.toggle();
      return;
    }
    if (event.key === "r" || event.key === "R") {
      sync.replay();
      return;
    }
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
    if (el.lightbox.hidden === false) closeLightbox();
    if (!ready && !busy) tooEarly();
    else if (current?.questions.length > 1) pick(nextQuestion()?.id, answer);
    else choose(answer);
  }
});

refresh();
