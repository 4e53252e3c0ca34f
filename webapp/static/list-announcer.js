// Live status changes on a list of orders, said in words: each order.status.updated for a row
// the list shows goes into the page's polite live region (#list-announcer), so that a screen
// reader hears "Order ORD-2026-000006 is now Paid" without losing its place.
(function () {
  'use strict';
  const table = document.getElementById('orders');
  const region = document.getElementById('list-announcer');

  function announce(order) {
    if (!document.getElementById('order-' + order.order_id)) return;  // not in this view
    region.textContent = 'Order ' + order.order_number + ' is now ' +
      order.current_status_label + '.';
  }

  // orders-list.js follows this channel and updates the row first (its listener came first).
  window.Echo.private(table.dataset.channel).listen('.order.status.updated', announce);
})();
