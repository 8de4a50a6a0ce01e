/* tokfeed's feed client: measures watch time and delivers the viewer's events, none lost.
 *
 * How it is built, and why:
 * - htmx's ws extension owns the socket (ws-connect on #feed): it connects, reconnects with the
 *   backoff set below, and swaps the server's HTML frames. Those are batches of cards wrapped in
 *   an hx-swap-oob="beforeend" element, which htmx appends to #feed-cards.
 * - The server's JSON frames (ack, error, state) are ours: they are read in htmx:wsBeforeMessage,
 *   which then cancels htmx's swap.
 * - Every event gets a UUID event_id and waits in an outbox, kept in localStorage per feed session
 *   so a reload does not lose it, until the server acknowledges it. On every (re)connect the whole
 *   outbox is sent again in order; the server applies an event_id once and acks repeats as before.
 * - With no websocket (unsupported, ?transport=http, or down for FALLBACK_AFTER_MS), the outbox is
 *   POSTed to /feed/events/ one event at a time (CSRF header), and the next batch comes by an htmx
 *   POST to /feed/batch/. Both ways may deliver the same event: that is safe, see above.
 * - Backpressure: a retryable error frame (an "overloaded" server, a "busy" session) says when to
 *   send the event again (retry_after_ms); over HTTP a 503/429 says it with Retry-After. Until
 *   then nothing more is sent: the outbox (the refused event first, new ones after it) waits, and
 *   goes out again in order, with the same event ids, so every event is applied exactly once.
 * - A socket counts as up only once it has stayed open for STABLE_AFTER_MS or brought a frame: one
 *   that opens and closes again at once (a server that accepts, then fails) does not reset the
 *   fallback's clock, so the feed moves to HTTP instead of flapping; the ws extension keeps
 *   reconnecting with its backoff, and a socket that stays up takes over again.
 * - Watch time: a card's clock runs while it is the current card (most of it on screen), the tab
 *   is visible, the viewer is not idle (some input in the last IDLE_MS) and its video is not
 *   loading (feed-ux.js marks it). Wall time, so the loops of a short video count. Leaving the
 *   card sends a "view" event with the time counted.
 * - The viewer's side (actions, media, banners, the end of the feed) is feed-ux.js: it sends
 *   through window.tokfeed and listens to the "tokfeed:*" events (see the end of this file).
 * - Refill: when the viewer is REFILL_AT cards or fewer from the end, the event being sent carries
 *   `remaining` and `batch` (the last batch held), and the server answers with the next batch.
 * - Revised cards: after each view the server re-ranks the cards not yet reached and sends their
 *   replacements, each an hx-swap-oob="outerHTML" card with the id of the one it replaces (over
 *   HTTP, the ack's `html`). A replacement is refused (htmx:oobBeforeSwap) for a card the viewer
 *   has reached, any card before the current one, or a card on screen at all: the viewer moved
 *   on faster than the server, and that card stays as it is (its view is still accepted).
 */
(function () {
  "use strict";

  const feed = document.getElementById("feed");
  const list = document.getElementById("feed-cards");
  if (!feed || !list) return;

  const REFILL_AT = Number(feed.dataset.refillAt) || 2;
  const IDLE_MS = Number(feed.dataset.idleMs) || 60000;
  const FALLBACK_AFTER_MS = 3000;
  const STABLE_AFTER_MS = 2000;
  const HTTP_RETRY_MAX_MS = 10000;
  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;

  // The socket's reconnect backoff: exponential from 250 ms, capped at 8 s, with jitter.
  if (window.htmx) {
    htmx.config.wsReconnectDelay = function (retries) {
      const ceiling = Math.min(8000, 250 * Math.pow(2, retries));
      return ceiling / 2 + Math.random() * ceiling / 2;
    };
  }
  const websocketWanted = feed.hasAttribute("ws-connect") && "WebSocket" in window;
  if (!websocketWanted) feed.removeAttribute("ws-connect");

  /* ---------------------------------------------------------------- outbox */

  const storeKey = "tokfeed:outbox:" + feed.dataset.session;
  let outbox = restoreOutbox();

  function restoreOutbox() {
    try {
      const saved = JSON.parse(localStorage.getItem(storeKey) || "[]");
      return Array.isArray(saved) ? saved : [];
    } catch (_) {
      return [];
    }
  }

  function saveOutbox() {
    try {
      localStorage.setItem(storeKey, JSON.stringify(outbox));
    } catch (_) { /* storage full or disabled: the outbox still lives in memory */ }
    feed.dataset.pending = String(outbox.length);
    showStatus();
  }

  function newEventId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    // randomUUID needs a secure context; getRandomValues does not.
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" + hex.slice(16, 20) + "-" + hex.slice(20);
  }

  function enqueue(event) {
    event.event_id = newEventId();
    outbox.push(event);
    saveOutbox();
    flush();
  }

  function settle(eventId) {
    const event = outbox.find((e) => e.event_id === eventId);
    outbox = outbox.filter((e) => e.event_id !== eventId);
    inFlight.delete(eventId);
    saveOutbox();
    return event;
  }

  /* ---------------------------------------------------------------- transport */

  let socket = null;            // the ws extension's socket wrapper while the socket is open
  let socketDownSince = Date.now();
  const inFlight = new Set();   // event_ids sent on the current socket, awaiting their ack
  let lastBatch = 0;            // the highest batch number among the cards held
  let requestedAfter = null;    // the batch after which a refill was asked for, until it arrives
  let httpBusy = false;
  let httpRetryMs = 500;
  let flushTimer = null;
  let holdUntil = 0;            // Date.now() before which nothing is sent: the server asked for a delay

  // The server's retry delay, honoured: nothing is sent before it has passed.
  function holdFor(delayMs) {
    holdUntil = Math.max(holdUntil, Date.now() + delayMs);
    feed.dataset.holdUntil = String(holdUntil);
    scheduleFlush(holdUntil - Date.now());
  }

  function usingHttp() {
    if (socket) return false;
    return !websocketWanted || Date.now() - socketDownSince >= FALLBACK_AFTER_MS;
  }

  function transport() {
    return socket ? "ws" : usingHttp() ? "http" : "connecting";
  }

  function flush() {
    feed.dataset.transport = transport();
    if (Date.now() < holdUntil) {
      scheduleFlush(holdUntil - Date.now());
      return;
    }
    if (socket) {
      for (const event of outbox) {
        if (!inFlight.has(event.event_id)) sendOnSocket(withRefill(event));
      }
      if (wantsRefill()) sendOnSocket(withRefill({ type: "next", event_id: newEventId() }));
    } else if (usingHttp()) {
      postNext();
      if (wantsRefill()) getNextBatch();
    } else {
      // The socket may come back any moment; after FALLBACK_AFTER_MS, HTTP takes over.
      scheduleFlush(FALLBACK_AFTER_MS - (Date.now() - socketDownSince));
    }
  }

  function scheduleFlush(delay) {
    clearTimeout(flushTimer);
    flushTimer = setTimeout(flush, Math.max(50, delay));
  }

  function sendOnSocket(payload) {
    try {
      socket.sendImmediately(JSON.stringify(payload));
      if (payload.type !== "next") inFlight.add(payload.event_id);
    } catch (_) { /* closing: the outbox is resent on the next open */ }
  }

  // Refill requests ride on the event being sent; they are worked out when it is sent, so a
  // resent event never carries a stale one.
  function wantsRefill() {
    return remainingCards() <= REFILL_AT && requestedAfter !== lastBatch;
  }

  function withRefill(event) {
    if (!wantsRefill()) return event;
    requestedAfter = lastBatch;
    return Object.assign({}, event, { remaining: remainingCards(), batch: lastBatch });
  }

  async function postNext() {
    if (httpBusy || !outbox.length) return;
    httpBusy = true;
    const event = outbox[0];
    try {
      const response = await fetch(feed.dataset.eventsUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken },
        body: JSON.stringify(event),
        credentials: "same-origin",
      });
      const frame = await response.json().catch(() => null);
      if (frame) handleFrame(frame);
      httpBusy = false;
      // Acked, or refused for good: on to the next. Anything else is tried again later: after the
      // server's Retry-After when it gave one (503 overloaded or unavailable, 429), else with backoff.
      if (outbox.includes(event)) {
        const retryAfterS = Number(response.headers.get("Retry-After"));
        if (retryAfterS > 0) {
          holdFor(retryAfterS * 1000);
          return;
        }
        throw new Error("HTTP " + response.status);
      }
      httpRetryMs = 500;
      flush();
    } catch (_) {
      httpBusy = false;
      httpRetryMs = Math.min(HTTP_RETRY_MAX_MS, httpRetryMs * 2);
      scheduleFlush(httpRetryMs);
    }
  }

  function getNextBatch() {
    requestedAfter = lastBatch;
    htmx.ajax("POST", feed.dataset.batchUrl, {
      target: list, swap: "beforeend", values: { after: lastBatch }, headers: { "X-CSRFToken": csrfToken },
    }).catch(() => { requestedAfter = null; });
  }
  document.body.addEventListener("htmx:afterRequest", (e) => {
    const xhr = e.detail.xhr;
    if (e.detail.successful && xhr && e.detail.pathInfo && e.detail.pathInfo.requestPath === feed.dataset.batchUrl) {
      noteBatchHtml(xhr.responseText || "");
    }
  });
  document.body.addEventListener("htmx:responseError", (e) => {
    requestedAfter = null;
    const xhr = e.detail && e.detail.xhr;
    const retryAfterS = xhr ? Number(xhr.getResponseHeader("Retry-After")) : 0;
    if (retryAfterS > 0) holdFor(retryAfterS * 1000);  // the refill is asked for again after it
  });
  document.body.addEventListener("htmx:sendError", () => { requestedAfter = null; scheduleFlush(httpRetryMs); });

  let openSocket = null;  // the WebSocket behind `socket`: a replaced one's late close is ignored
  let stableTimer = null;

  function socketProvedUp() {
    clearTimeout(stableTimer);
    if (socket) socketDownSince = null;
  }

  document.body.addEventListener("htmx:wsOpen", (e) => {
    socket = e.detail.socketWrapper;
    openSocket = e.detail.event && e.detail.event.target;
    clearTimeout(stableTimer);
    stableTimer = setTimeout(socketProvedUp, STABLE_AFTER_MS);
    inFlight.clear();
    requestedAfter = null;  // a refill asked on the old socket may have died with it
    flush();
  });

  document.body.addEventListener("htmx:wsClose", (e) => {
    if (e.detail.event && openSocket && e.detail.event.target !== openSocket) return;
    socket = null;
    openSocket = null;
    clearTimeout(stableTimer);
    socketDownSince = socketDownSince || Date.now();
    inFlight.clear();
    if (requestedAfter === lastBatch) requestedAfter = null;
    if (e.detail.event && e.detail.event.code >= 4000) {
      showStatus("This feed session has ended: reload the page to go on.");
      return;
    }
    flush();
  });

  document.body.addEventListener("htmx:wsBeforeMessage", (e) => {
    const message = e.detail.message;
    if (typeof message === "string" && message.charAt(0) === "{") {
      e.preventDefault();  // ours, not HTML for htmx to swap
      socketProvedUp();
      try {
        handleFrame(JSON.parse(message));
      } catch (_) { /* a frame we cannot read changes nothing */ }
    } else if (typeof message === "string") {
      noteBatchHtml(message);
    }
  });

  function handleFrame(frame) {
    if (frame.type === "ack") {
      const event = settle(frame.event_id);
      announce("tokfeed:ack", { frame: frame, event: event });
      if (frame.state) setText("why-state", frame.state);
      if (event && event.type === "view" && frame.signal) setText("why-signal", frame.signal);
      // Over HTTP the revised cards ride on the ack; they swap in as the socket's frame does.
      if (typeof frame.html === "string" && frame.html && window.htmx) {
        htmx.swap(list, frame.html, { swapStyle: "none" });
      }
    } else if (frame.type === "state") {
      setText("why-state", frame.state);
    } else if (frame.type === "error") {
      // Not applied. A retryable error is sent again later; any other never will succeed.
      if (frame.event_id && !frame.retry) announce("tokfeed:refused", { frame: frame, event: settle(frame.event_id) });
      if (frame.event_id && frame.retry) {
        // Every event sent after it is refused too until the delay has passed (the server keeps
        // their order so): all are sent again then, in order.
        inFlight.clear();
        requestedAfter = null;  // a refused refill is asked for again with the next event
        holdFor(frame.retry_after_ms > 0 ? frame.retry_after_ms : 1000);
      }
      if (window.console) console.warn("tokfeed:", frame.error);
    }
  }

  // Back online, a socket that looks open may be dead (its TCP connection lost, not yet timed
  // out): replace it, and the new one resends the outbox.
  window.addEventListener("online", () => {
    if (socket) {
      const stale = socket;
      socket = null;
      socketDownSince = Date.now();
      stale.reconnect();
    }
    flush();
  });
  window.addEventListener("offline", () => showStatus());

  /* ---------------------------------------------------------------- cards */

  function cards() {
    return Array.from(list.querySelectorAll(".card"));
  }

  function remainingCards() {
    const all = cards();
    const index = current ? all.indexOf(current.card) : -1;
    return all.length - 1 - Math.max(index, 0);
  }

  const visibility = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (entry.isIntersecting && entry.intersectionRatio >= 0.6) makeCurrent(entry.target);
    }
  }, { root: list, threshold: [0.6] });

  const reached = new WeakSet();  // cards that have been the current one
  let headingTo = null;  // the card go() scrolls to: the viewer chose it, a revision may not swap it

  function onScreen(card) {
    const r = card.getBoundingClientRect();
    const view = list.getBoundingClientRect();
    return r.bottom > view.top + 1 && r.top < view.bottom - 1;
  }

  // A revised card replaces one the viewer has not reached; never one reached, before the
  // current one, or visible (no flicker). The new card is adopted like any card added to the list.
  list.addEventListener("htmx:oobBeforeSwap", (e) => {
    const target = e.detail.target;
    if (!target || !target.classList || !target.classList.contains("card") || target.parentNode !== list) return;
    const all = cards();
    const currentIndex = current ? all.indexOf(current.card) : 0;
    if (reached.has(target) || target === headingTo || all.indexOf(target) <= currentIndex || onScreen(target)) {
      e.preventDefault();
    }
  });

  function adopt(card) {
    // A batch delivered twice (both transports, or a resent refill) repeats card ids.
    if (document.querySelectorAll("#" + CSS.escape(card.id)).length > 1) {
      card.remove();
      return;
    }
    lastBatch = Math.max(lastBatch, Number(card.dataset.batch) || 0);
    visibility.observe(card);
  }

  cards().forEach(adopt);
  new MutationObserver((mutations) => {
    let added = false;
    for (const m of mutations) {
      m.removedNodes.forEach((node) => {
        if (node.nodeType === 1 && node.classList.contains("card")) visibility.unobserve(node);
      });
      m.addedNodes.forEach((node) => {
        if (node.nodeType === 1 && node.classList.contains("card")) {
          adopt(node);
          added = true;
        }
      });
    }
    if (added) {
      const empty = list.querySelector(".empty");
      if (empty) empty.remove();
      showStatus();
      flush();  // still near the end (a small batch)? ask again
    }
  }).observe(list, { childList: true });

  /* ---------------------------------------------------------------- watch time */

  let current = null;  // { card, countedMs, runningSince (ms timestamp or null) }
  let lastInputAt = performance.now();
  let idle = false;

  function clockMayRun() {
    return document.visibilityState === "visible" && !idle && !(current && mediaWaiting(current.card));
  }

  function pauseClock(watch, at) {
    if (watch && watch.runningSince !== null) {
      watch.countedMs += Math.max(0, at - watch.runningSince);
      watch.runningSince = null;
    }
  }

  function resumeClock(watch) {
    if (watch && watch.runningSince === null && clockMayRun()) watch.runningSince = performance.now();
  }

  function makeCurrent(card) {
    if (current && current.card === card) return;
    const previous = current;
    current = { card, countedMs: 0, runningSince: null };
    reached.add(card);
    feed.dataset.current = card.dataset.video;
    resumeClock(current);
    announce("tokfeed:current", { card: card, previous: previous && previous.card });
    if (previous) leave(previous);  // after the switch, so its refill request sees the new position
    else flush();
  }

  function leave(watch) {
    pauseClock(watch, performance.now());
    enqueue({
      type: "view",
      video: Number(watch.card.dataset.video),
      watched_ms: Math.round(watch.countedMs),
      duration_ms: Number(watch.card.dataset.durationMs) || 0,
    });
  }

  function noteInput() {
    lastInputAt = performance.now();
    if (idle) {
      idle = false;
      resumeClock(current);
    }
  }

  ["pointerdown", "keydown", "wheel", "touchstart", "mousemove"].forEach((name) =>
    window.addEventListener(name, noteInput, { passive: true, capture: true }));
  list.addEventListener("scroll", noteInput, { passive: true });

  setInterval(() => {
    if (!idle && performance.now() - lastInputAt >= IDLE_MS) {
      idle = true;
      pauseClock(current, lastInputAt + IDLE_MS);  // time stops when the viewer went idle, not when noticed
    }
  }, 1000);

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") {
      noteInput();
      resumeClock(current);
      flush();
    } else {
      pauseClock(current, performance.now());
    }
  });

  // Closing or leaving the page leaves the card too: its view is queued (and kept for next time).
  window.addEventListener("pagehide", () => {
    if (current) {
      const watch = current;
      current = null;
      leave(watch);
    }
  });
  window.addEventListener("pageshow", (e) => {
    if (e.persisted) {
      const onScreen = cards().find((c) => {
        const r = c.getBoundingClientRect();
        return r.top >= -r.height * 0.4 && r.top < r.height * 0.4;
      });
      if (onScreen) makeCurrent(onScreen);
    }
  });

  /* ---------------------------------------------------------------- media (played by feed-ux.js) */

  // While a card's video is loading or buffering (feed-ux.js sets data-media="waiting"), its
  // clock stops: a dead or slow media URL is not watch time. It runs on once the video plays,
  // or once the card falls back to its cover or poster.
  function mediaWaiting(card) {
    return card.dataset.media === "waiting";
  }

  feed.addEventListener("tokfeed:media", (e) => {
    if (!current || e.detail.card !== current.card) return;
    if (mediaWaiting(current.card)) pauseClock(current, performance.now());
    else resumeClock(current);
  });

  /* ---------------------------------------------------------------- controls */

  function reducedMotion() {
    return window.matchMedia && matchMedia("(prefers-reduced-motion: reduce)").matches;
  }

  function go(step) {
    const all = cards();
    const index = current ? all.indexOf(current.card) : 0;
    const target = all[index + step];
    if (target) {
      headingTo = target;
      target.scrollIntoView({ behavior: reducedMotion() ? "auto" : "smooth", block: "start" });
    } else if (step > 0) {
      atEndOfList();
    }
  }

  feed.addEventListener("click", (e) => {
    const button = e.target.closest("button");
    if (!button) return;
    if (button.dataset.feed === "next") go(1);
    else if (button.dataset.feed === "prev") go(-1);
    else if (button.dataset.feed === "why") {
      const shown = feed.classList.toggle("show-why");
      button.setAttribute("aria-pressed", String(shown));
    }  // the cards' actions are feed-ux.js's
  });

  document.addEventListener("keydown", (e) => {
    if (e.altKey || e.ctrlKey || e.metaKey || e.target.closest("input, textarea, select, [contenteditable]")) return;
    if (e.key === "ArrowDown" || e.key === "j") {
      e.preventDefault();
      go(1);
    } else if (e.key === "ArrowUp" || e.key === "k") {
      e.preventDefault();
      go(-1);
    }
  });

  /* ---------------------------------------------------------------- status */

  function setText(id, text) {
    const element = document.getElementById(id);
    if (element) element.textContent = text;
  }

  // "2 views and 1 action wait to be sent.": a like or a follow is not a view.
  function waitingText(events) {
    const views = events.filter((e) => e.type === "view").length;
    const actions = events.length - views;
    const parts = [];
    if (views) parts.push(views + (views === 1 ? " view" : " views"));
    if (actions) parts.push(actions + (actions === 1 ? " action" : " actions"));
    return parts.join(" and ") + (events.length === 1 ? " waits to be sent." : " wait to be sent.");
  }

  function showStatus(message) {
    let text = message || "";
    if (!text && outbox.length && (!socket || navigator.onLine === false)) {
      text = navigator.onLine === false ? "Offline: " : "Reconnecting: ";
      text += waitingText(outbox);
    }
    setText("feed-status", text);
  }

  /* ---------------------------------------------------------------- hooks for feed-ux.js */
  // feed-ux.js (actions, media, banners, the end of the feed) is the viewer's side; this file
  // keeps the outbox and the transports. They talk through window.tokfeed and "tokfeed:*"
  // events on #feed: current (a card became the current one), ack and refused (an event's
  // fate), batch (a batch arrived: detail.cards, how many), media (a card's media state changed).

  function announce(name, detail) {
    feed.dispatchEvent(new CustomEvent(name, { detail: detail }));
  }

  // A batch's HTML (socket frame or HTTP reply) with no card in it: the server has nothing more.
  function noteBatchHtml(html) {
    if (html.indexOf('id="feed-cards"') === -1 && html.indexOf('id="why-state"') === -1) return;
    if (html.indexOf('hx-swap-oob="outerHTML"') !== -1) return;  // a revision, not a batch
    announce("tokfeed:batch", { cards: (html.match(/<article class="card"/g) || []).length });
  }

  // Past the last card: ask for more (feed-ux.js shows why nothing is there yet).
  function atEndOfList() {
    announce("tokfeed:end-of-list", { online: navigator.onLine !== false, transport: transport() });
    requestedAfter = null;
    flush();
  }

  window.tokfeed = {
    /** Queue an event for the server (delivered once, in order); returns its event_id. */
    send: function (event) { enqueue(event); return event.event_id; },
    go: go,
    current: function () { return current ? current.card : null; },
    pending: function () { return outbox.length; },
    connected: function () { return Boolean(socket) || (usingHttp() && navigator.onLine !== false); },
  };

  feed.dataset.pending = String(outbox.length);
  flush();
})();
