/* The admin's live monitor: keeps the list of live events (inserted by htmx's websocket
 * extension at the top of #monitor-events) to its latest MAX_EVENTS rows. */
(function () {
  "use strict";
  const MAX_EVENTS = 50;
  document.addEventListener("htmx:wsAfterMessage", function () {
    const events = document.getElementById("monitor-events");
    while (events && events.rows.length > MAX_EVENTS) events.deleteRow(events.rows.length - 1);
  });
})();
