// The view an orders list shows, as its URL names it (status, search, dates, sort, page, page
// size), fetched again from the API and laid over the table: rows that left the view go, rows
// that entered it come, all in the view's order. Rows already showing the same order in the same
// state stay as they are (their focus and the admin's selection with them). orders-list.js
// calls it after a change the event alone cannot place in the view.
(function () {
  'use strict';
  const NAMES = ['status', 'q', 'from', 'to', 'sort', 'page', 'per_page'];
  const DEFAULT_SORT = '-created';
  const url = new URLSearchParams(window.location.search);
  const query = new URLSearchParams();
  NAMES.forEach(function (name) {
    if (url.get(name)) query.set(name, url.get(name));
  });
  // Newest first over every date: a new order goes at the top of the first page.
  const newestFirst = (url.get('sort') || DEFAULT_SORT) === DEFAULT_SORT &&
    !url.get('from') && !url.get('to');

  // GET /api/orders for this view; null when its page is past the last now (orders left the
  // view): the page is loaded again, and the server sends it to the last page.
  async function fetchView() {
    try {
      return await window.Resound.api('/api/orders?' + query);
    } catch (error) {
      if (error.status !== 404) throw error;
      window.location.replace(window.location.href);
      return null;
    }
  }

  function showsAlready(tr, order) {
    const updated = tr.querySelector('td.updated time');
    return tr.dataset.status === order.current_status && updated !== null &&
      updated.getAttribute('datetime') === order.updated_at;
  }

  // Make `body`'s rows those of `orders` (events' shape), in their order; `makeRow(order)`
  // builds a row, `highlight(tr)` marks one that is new or changed here.
  function reconcile(body, orders, makeRow, highlight) {
    const wanted = orders.map(function (order) {
      const existing = document.getElementById('order-' + order.order_id);
      if (existing && existing.parentNode === body && showsAlready(existing, order)) return existing;
      const fresh = makeRow(order);
      if (existing) existing.replaceWith(fresh);
      highlight(fresh);
      return fresh;
    });
    const keep = new Set(wanted);
    Array.from(body.rows).forEach(function (tr) {
      if (!keep.has(tr)) tr.remove();
    });
    let cursor = body.firstElementChild;
    wanted.forEach(function (tr) {
      if (tr === cursor) cursor = cursor.nextElementSibling;
      else body.insertBefore(tr, cursor);
    });
  }

  window.Resound.ordersView = { fetch: fetchView, reconcile: reconcile, newestFirst: newestFirst };
})();
