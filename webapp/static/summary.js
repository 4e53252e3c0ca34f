// The admins' summary strip (templates/_summary.html): today's orders and revenue, pending and
// to ship, read again from GET /api/summary after every order event on the page's channel.
(function () {
  'use strict';
  const strip = document.getElementById('summary');
  const format = window.Resound.format;

  function show(summary) {
    strip.querySelectorAll('[data-summary]').forEach(function (node) {
      const name = node.dataset.summary;
      if (name === 'revenue_today') {
        node.replaceChildren(format.money(summary.revenue_today));
      } else if (name === 'by_status') {
        node.textContent = String(node.dataset.statuses.split(' ').reduce(function (sum, status) {
          return sum + (summary.by_status[status] || 0);
        }, 0));
      } else {
        node.textContent = String(summary[name]);
      }
    });
  }

  const refresh = window.Resound.latest(async function () {
    show(await window.Resound.api('/api/summary'));
  });

  function changed() {
    refresh().catch(function (error) {
      window.Resound.say('Could not update the summary: ' + error.message, 'error');
    });
  }

  window.Resound.live.follow(
    window.Echo.private(strip.dataset.channel)
      .listen('.order.created', changed)
      .listen('.order.status.updated', changed),
    refresh
  );
})();
