/* The admin's live monitor (templates/admin/feed/monitor/page.html). htmx's websocket extension
 * inserts each live event at the top of #monitor-events; this keeps the latest MAX_EVENTS rows
 * and shows whether the stream is connected (#monitor-live's data-live: "open" or "closed"). */
(function () {
  "use strict";
  const MAX_EVENTS = 50;

  function setLive(state, text) {
    const live = document.getElementById("monitor-live");
    const status = document.getElementById("monitor-live-status");
    if (live) live.dataset.live = state;
    if (status) status.textContent = text;
  }

  document.addEventListener("htmx:wsOpen", function () { setLive("open", "connected"); });
  document.addEventListener("htmx:wsClose", function () { setLive("closed", "reconnecting…"); });
  document.addEventListener("htmx:wsAfterMessage", function () {
    const events = document.getElementById("monitor-events");
    while (events && events.rows.length > MAX_EVENTS) events.deleteRow(events.rows.length - 1);
  });
})();
