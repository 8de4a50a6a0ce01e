/* tokfeed's feed, the viewer's side: actions, media, banners and the end of the feed.
 *
 * feed.js keeps the outbox and the transports (every event sent once, acked, resent); this file
 * only calls window.tokfeed.send() and listens to feed.js's "tokfeed:*" events on #feed:
 * - Actions are signals through the same outbox as views: like and follow are toggles (taking
 *   one back sends an "undo" naming the action's event_id); share records SHARE once the link
 *   was shared (Web Share API) or copied; "not interested" moves on at once and is sent after
 *   UNDO_MS unless the viewer undoes it (leaving the page sends it at once).
 * - Media: the current card's video plays muted (unmute is remembered in localStorage), tap or
 *   space pauses it, a thin bar shows its progress. While it loads or buffers the card is
 *   data-media="waiting" and feed.js stops its clock; a video that fails, or does not play
 *   within MEDIA_TIMEOUT_MS, gives way to the cover image, else to the poster, and the clock runs
 *   on. The next card's media is preloaded.
 * - Banners: offline, reconnecting; the end of the feed (a batch that came back empty) and a
 *   skeleton while the next batch is on its way. A batch not there after STALLED_AFTER_MS (a
 *   server that stopped answering while the socket looks open) says so, with a "Try again" that
 *   asks for it again (the server serves the batch after a given one once, so asking twice is safe).
 */
(function () {
  "use strict";

  const feed = document.getElementById("feed");
  const list = document.getElementById("feed-cards");
  if (!feed || !list || !window.tokfeed) return;

  const UNDO_MS = 5000;
  const MEDIA_TIMEOUT_MS = 6000;
  const RECONNECTING_AFTER_MS = 1500;
  const STALLED_AFTER_MS = 8000;
  const UNMUTED_KEY = "tokfeed:unmuted";

  /* ---------------------------------------------------------------- toast */

  const toast = document.getElementById("feed-toast");
  let toastTimer = null;
  let toastUndo = null;

  function showToast(text, undo) {
    clearTimeout(toastTimer);
    toast.querySelector(".toast-text").textContent = text;
    const button = toast.querySelector(".toast-undo");
    toastUndo = undo || null;
    button.hidden = !undo;
    toast.hidden = false;
    toastTimer = setTimeout(hideToast, undo ? UNDO_MS : 2500);
  }

  function hideToast() {
    clearTimeout(toastTimer);
    toast.hidden = true;
    toastUndo = null;
  }

  toast.querySelector(".toast-undo").addEventListener("click", () => {
    const undo = toastUndo;
    hideToast();
    if (undo) undo();
  });

  /* ---------------------------------------------------------------- actions */

  function videoOf(card) {
    return Number(card.dataset.video);
  }

  // A toggle (like, follow): on sends the action, off sends an undo naming it.
  function toggle(buttons, type, video, labels) {
    const on = buttons[0].getAttribute("aria-pressed") !== "true";
    let eventId = buttons[0].dataset.eventId;
    if (on) {
      eventId = window.tokfeed.send({ type: type, video: video });
    } else if (eventId) {
      window.tokfeed.send({ type: "undo", undoes: eventId });
      eventId = "";
    }
    buttons.forEach((b) => {
      b.setAttribute("aria-pressed", String(on));
      b.dataset.eventId = eventId || "";
      const label = b.querySelector(".label");
      if (label) label.textContent = on ? labels[1] : labels[0];
    });
  }

  function like(card) {
    toggle([card.querySelector("button.like")], "like", videoOf(card), ["Like", "Liked"]);
  }

  function follow(card) {
    // Every card of this creator shows the same follow.
    const creator = card.dataset.creator;
    const buttons = Array.from(list.querySelectorAll('.card[data-creator="' + CSS.escape(creator) + '"] button.follow'));
    toggle([card.querySelector("button.follow"), ...buttons.filter((b) => b.closest(".card") !== card)],
      "follow_creator", videoOf(card), ["Follow", "Following"]);
  }

  // An action the server refused for good (unknown to this algorithm...): its button goes back.
  feed.addEventListener("tokfeed:refused", (e) => {
    const event = e.detail.event;
    if (!event || !event.event_id) return;
    list.querySelectorAll('button[data-event-id="' + CSS.escape(event.event_id) + '"]').forEach((b) => {
      b.setAttribute("aria-pressed", "false");
      b.dataset.eventId = "";
    });
  });

  function shareUrl(card) {
    return card.dataset.shareUrl || location.origin + "/";
  }

  async function share(card) {
    const url = shareUrl(card);
    const video = videoOf(card);
    if (navigator.share) {
      try {
        await navigator.share({ url: url, title: "A video on tokfeed" });
        window.tokfeed.send({ type: "share", video: video });
      } catch (_) { /* cancelled: nothing was shared */ }
      return;
    }
    if (await copy(url)) {
      window.tokfeed.send({ type: "share", video: video });
      showToast("Link copied");
    } else {
      showToast("Copy this link to share it: " + url);
    }
  }

  async function copy(text) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (_) {
      const area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "offscreen";
      document.body.appendChild(area);
      area.select();
      let copied = false;
      try { copied = document.execCommand("copy"); } catch (_) { copied = false; }
      area.remove();
      return copied;
    }
  }

  const heldBack = new Map();  // card -> timer of a "not interested" still in its undo window

  function notInterested(card) {
    if (heldBack.has(card) || card.classList.contains("dismissed")) return;
    card.classList.add("dismissed");
    const send = () => {
      heldBack.delete(card);
      window.tokfeed.send({ type: "not_interested", video: videoOf(card) });
    };
    heldBack.set(card, setTimeout(send, UNDO_MS));
    showToast("Got it: fewer videos like this.", () => {
      clearTimeout(heldBack.get(card));
      heldBack.delete(card);
      card.classList.remove("dismissed");
    });
    window.tokfeed.go(1);
  }

  // Leaving the page does not lose a "not interested" waiting out its undo window.
  window.addEventListener("pagehide", () => {
    heldBack.forEach((timer, card) => {
      clearTimeout(timer);
      window.tokfeed.send({ type: "not_interested", video: videoOf(card) });
    });
    heldBack.clear();
  });

  const ACTIONS = { like: like, follow_creator: follow, share: share, not_interested: notInterested };

  list.addEventListener("click", (e) => {
    const button = e.target.closest("button[data-action]");
    if (button) {
      const card = button.closest(".card");
      if (card && ACTIONS[button.dataset.action]) ACTIONS[button.dataset.action](card);
      return;
    }
    // A tap on the video itself pauses or plays it (not on its text or buttons).
    if (e.target.closest(".card-info, .card-actions, .why-card, a, button")) return;
    const card = e.target.closest(".card");
    if (card && card === window.tokfeed.current()) togglePause(card);
  });

  // Keys for the current card: l like, f follow, s share, x not interested, m sound, space pause,
  // u undo (while the undo is offered).
  const KEYS = { l: like, f: follow, s: share, x: notInterested };

  document.addEventListener("keydown", (e) => {
    if (e.altKey || e.ctrlKey || e.metaKey || e.target.closest("input, textarea, select, [contenteditable]")) return;
    const card = window.tokfeed.current();
    if (KEYS[e.key] && card) {
      e.preventDefault();
      KEYS[e.key](card);
    } else if (e.key === "m") {
      e.preventDefault();
      setUnmuted(!unmuted());
    } else if (e.key === "u" && toastUndo) {
      e.preventDefault();
      toast.querySelector(".toast-undo").click();
    } else if (e.key === " " && card && !e.target.closest("button, a")) {
      e.preventDefault();
      togglePause(card);
    }
  });

  /* ---------------------------------------------------------------- media */

  function unmuted() {
    try { return localStorage.getItem(UNMUTED_KEY) === "1"; } catch (_) { return false; }
  }

  const soundButton = document.createElement("button");
  soundButton.type = "button";
  soundButton.className = "sound";
  feed.appendChild(soundButton);
  soundButton.addEventListener("click", () => setUnmuted(!unmuted()));

  function showSound() {
    const on = unmuted();
    soundButton.setAttribute("aria-pressed", String(on));
    soundButton.setAttribute("aria-label", on ? "Mute (m)" : "Unmute (m)");
    soundButton.textContent = on ? "♪ Sound on" : "♪ Unmute";
  }

  function setUnmuted(on) {
    try { localStorage.setItem(UNMUTED_KEY, on ? "1" : "0"); } catch (_) { /* kept for this page only */ }
    list.querySelectorAll("video.media").forEach((v) => { v.muted = !on; });
    showSound();
  }
  showSound();

  // The sound button shows while the current card has a video that plays.
  function showSoundIfPlaying() {
    const card = window.tokfeed.current();
    feed.classList.toggle("media-playing", Boolean(card && card.dataset.media === "playing"));
  }

  function setMedia(card, state) {
    if (card.dataset.media === state) return;
    card.dataset.media = state;
    showSoundIfPlaying();
    feed.dispatchEvent(new CustomEvent("tokfeed:media", { detail: { card: card, state: state } }));
  }

  function showCover(card) {
    const cover = card.querySelector("img.cover");
    if (!cover || cover.dataset.state) return;
    cover.dataset.state = "loading";
    cover.addEventListener("load", () => { cover.dataset.state = "loaded"; card.classList.add("has-cover"); });
    cover.addEventListener("error", () => { cover.dataset.state = "failed"; cover.remove(); });
    cover.src = cover.dataset.src;
  }

  // The video gave up: the cover (when it loads) or the poster stands in, and the clock runs.
  function mediaFailed(card, video) {
    clearTimeout(video._timeout);
    video.removeAttribute("src");
    video.remove();
    card.classList.remove("playing", "paused");
    setMedia(card, "failed");
  }

  // Give a card's video its source (not playing it): the current card's, and the next one's.
  function prepare(card) {
    showCover(card);
    const video = card.querySelector("video.media");
    if (!video || video.dataset.prepared) return video;
    video.dataset.prepared = "1";
    video.muted = !unmuted();
    video.addEventListener("playing", () => {
      clearTimeout(video._timeout);
      card.classList.add("playing");
      card.classList.remove("paused");
      setMedia(card, "playing");
    });
    video.addEventListener("waiting", () => {
      if (card === window.tokfeed.current() && !video.paused) setMedia(card, "waiting");
    });
    video.addEventListener("loadedmetadata", () => {
      if (isFinite(video.duration) && video.duration > 0) card.dataset.durationMs = String(Math.round(video.duration * 1000));
    });
    video.addEventListener("timeupdate", () => {
      const bar = card.querySelector(".progress-bar");
      if (bar && video.duration) bar.style.transform = "scaleX(" + Math.min(1, video.currentTime / video.duration) + ")";
    });
    video.addEventListener("error", () => mediaFailed(card, video));
    video.preload = "auto";
    video.src = video.dataset.src;
    return video;
  }

  function play(card) {
    const video = prepare(card);
    if (!video || !video.isConnected) return;
    if (card.dataset.media !== "playing") setMedia(card, "waiting");
    clearTimeout(video._timeout);
    // A URL that neither plays nor fails (a server that never answers) must not hold the card.
    video._timeout = setTimeout(() => { if (card.dataset.media === "waiting") mediaFailed(card, video); }, MEDIA_TIMEOUT_MS);
    video.muted = !unmuted();
    const started = video.play();
    if (started && started.catch) {
      started.catch(() => {
        // Sound without a gesture may be refused: play muted rather than not at all.
        if (!video.muted && video.isConnected) {
          video.muted = true;
          video.play().catch(() => {});
        }
      });
    }
  }

  function stop(card) {
    const video = card.querySelector("video.media");
    if (video) {
      clearTimeout(video._timeout);
      if (video.src) video.pause();
    }
    if (card.dataset.media === "waiting") setMedia(card, "idle");
  }

  function togglePause(card) {
    const video = card.querySelector("video.media");
    if (!video || !video.src || card.dataset.media === "failed") return;
    if (video.paused) {
      card.classList.remove("paused");
      video.play().catch(() => {});
    } else {
      video.pause();
      card.classList.add("paused");
    }
  }

  feed.addEventListener("tokfeed:current", (e) => {
    const card = e.detail.card;
    if (e.detail.previous) stop(e.detail.previous);
    play(card);
    showSoundIfPlaying();
    const cards = Array.from(list.querySelectorAll(".card"));
    const next = cards[cards.indexOf(card) + 1];
    if (next) prepare(next);
    showEndIfLast(card);
  });

  /* ---------------------------------------------------------------- banners and the end */

  const banner = document.getElementById("feed-banner");
  const end = document.getElementById("feed-end");
  const stalled = document.getElementById("feed-stalled");
  let ended = false;
  let stallTimer = null;
  let connectingSince = null;
  let bannerTimer = null;

  function showBanner() {
    let text = "";
    if (navigator.onLine === false) {
      text = "You're offline. What you do is kept and sent when you're back online.";
    } else if (feed.dataset.transport === "connecting" && connectingSince !== null
               && Date.now() - connectingSince >= RECONNECTING_AFTER_MS) {
      text = "Reconnecting…";
    }
    banner.textContent = text;
    banner.hidden = !text;
    feed.classList.toggle("offline", navigator.onLine === false);
  }

  function onTransport() {
    if (feed.dataset.transport === "connecting") {
      if (connectingSince === null) connectingSince = Date.now();
      clearTimeout(bannerTimer);
      bannerTimer = setTimeout(showBanner, RECONNECTING_AFTER_MS + 50);
    } else {
      connectingSince = null;
    }
    showBanner();
  }

  new MutationObserver(onTransport).observe(feed, { attributes: true, attributeFilter: ["data-transport"] });
  window.addEventListener("online", showBanner);
  window.addEventListener("offline", showBanner);
  connectingSince = Date.now();  // the first connection is "connecting" too; only a long one shows
  onTransport();

  function showEndIfLast(card) {
    const cards = list.querySelectorAll(".card");
    end.hidden = !(ended && cards.length && cards[cards.length - 1] === card);
  }

  // The skeleton, until the batch comes; past STALLED_AFTER_MS, words and a way to ask again.
  function startLoading() {
    feed.classList.add("loading");
    stalled.hidden = true;
    clearTimeout(stallTimer);
    stallTimer = setTimeout(() => { stalled.hidden = !feed.classList.contains("loading"); }, STALLED_AFTER_MS);
  }

  function stopLoading() {
    feed.classList.remove("loading");
    clearTimeout(stallTimer);
    stalled.hidden = true;
  }

  stalled.querySelector("button").addEventListener("click", () => window.tokfeed.go(1));

  feed.addEventListener("tokfeed:batch", (e) => {
    if (e.detail.cards === 0) stopLoading();
    ended = e.detail.cards === 0;
    const current = window.tokfeed.current();
    if (current) showEndIfLast(current);
    // (With no card at all, the page's own "no videos yet" says it.)
  });

  feed.addEventListener("tokfeed:end-of-list", (e) => {
    if (ended) {
      end.hidden = false;
    } else if (!e.detail.online) {
      showBanner();
    } else {
      startLoading();
    }
  });

  // Cards that came in: the skeleton gives way to the next card (the viewer asked for it), and
  // the card after the current one starts loading.
  new MutationObserver(() => {
    if (feed.classList.contains("loading") && list.querySelector(".card")) {
      stopLoading();
      window.tokfeed.go(1);
    }
    const current = window.tokfeed.current();
    if (current) {
      const cards = Array.from(list.querySelectorAll(".card"));
      const next = cards[cards.indexOf(current) + 1];
      if (next) prepare(next);
    }
  }).observe(list, { childList: true });

  // "Reset my feed" waits for the events not yet sent: they belong to the feed being left.
  document.querySelectorAll('form[action$="/feed/reset/"]').forEach((form) => {
    form.addEventListener("submit", (e) => {
      if (!window.tokfeed.pending()) return;
      e.preventDefault();
      showToast("Sending what you did first…");
      const wait = setInterval(() => {
        if (!window.tokfeed.pending()) {
          clearInterval(wait);
          form.submit();
        }
      }, 200);
    });
  });
})();
