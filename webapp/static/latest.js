// Resound.latest(task): a function that runs `task` (async: fetch something and show it), never
// twice at once. Called while a run is under way, it runs `task` once more after it, so the last
// run starts after the last call: what the page shows is never older than the latest change it
// heard of. Each call answers the promise of the run that covers it.
(function () {
  'use strict';

  function latest(task) {
    let running = null;
    let again = false;
    return function run() {
      if (running) {
        again = true;
        return running;
      }
      running = (async function () {
        try {
          do {
            again = false;
            await task();
          } while (again);
        } finally {
          running = null;
        }
      })();
      return running;
    };
  }

  window.Resound.latest = latest;
})();
