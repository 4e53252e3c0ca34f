// The orders table (admin dashboard or "my orders"): new orders appear, statuses change live,
// and the status tabs keep their counts. Rows that appear or change are highlighted. Where an
// event alone cannot tell what the view shows now (a filtered, searched, dated or otherwise
// sorted view, or a later page), the view is read again (orders-view.js), so the list drops
// the rows that left it and takes in those that entered it; elsewhere only the counts are.
(function () {
  'use strict';
  const table = document.getElementById('orders');
  const body = table.querySelector('tbody');
  const empty = document.getElementById('orders-empty');
  const showCustomer = JSON.parse(table.dataset.showCustomer);
  const statusFilter = table.dataset.statusFilter || 'all';
  const query = table.dataset.q || '';
  const pageNumber = Number(table.dataset.page || 1);
  const perPage = Number(table.dataset.perPage || 0);
  const el = window.Resound.element;
  const format = window.Resound.format;
  const view = window.Resound.ordersView;

  function cell(child, attributes) {
    const td = el('td', null, attributes);
    td.appendChild(child);
    return td;
  }

  function row(order) {
    const tr = el('tr', null, { id: 'order-' + order.order_id, 'data-order-id': order.order_id,
                                'data-status': order.current_status });
    tr.appendChild(cell(el('a', order.order_number, { href: '/orders/' + order.order_id }),
                        { 'data-label': 'Order' }));
    if (showCustomer) {
      tr.appendChild(el('td', order.user.name, { class: 'customer', 'data-label': 'Customer' }));
    }
    tr.appendChild(cell(format.badge(order.current_status, order.current_status_label),
                        { class: 'status', 'data-status': order.current_status, 'data-label': 'Status' }));
    tr.appendChild(el('td', order.items_count, { class: 'items num', 'data-label': 'Items' }));
    tr.appendChild(cell(format.money(order.total), { class: 'total num', 'data-label': 'Total' }));
    tr.appendChild(cell(format.time(order.created_at), { class: 'created', 'data-label': 'Created' }));
    tr.appendChild(cell(format.time(order.updated_at), { class: 'updated', 'data-label': 'Updated' }));
    return tr;
  }

  // An order as the API answers it, in the shape of the broadcast events.
  function asEvent(order) {
    return {
      order_id: order.id, order_number: order.order_number, user: order.user,
      current_status: order.status, current_status_label: order.status_label,
      items_count: order.items_count, total: order.total, updated_at: order.updated_at,
      created_at: order.created_at,
    };
  }

  function showEmptyState() {
    empty.hidden = body.rows.length > 0;
  }

  function setCounts(counts) {
    Object.entries(counts || {}).forEach(function ([status, count]) {
      const node = document.querySelector('[data-count-for="' + status + '"]');
      if (node) node.textContent = String(count);
    });
  }

  function highlight(tr) {
    tr.classList.add('changed');
    tr.addEventListener('animationend', function () { tr.classList.remove('changed'); },
                        { once: true });
  }

  // Every order, newest first, no search: an event tells all it changes here. A new order goes
  // on top (of the first page; later pages shift, so they are read again), a status change
  // changes its own row only.
  const plain = view.newestFirst && statusFilter === 'all' && !query;

  // A new order belongs at the top of this table only on the first page of a newest-first view
  // it matches; elsewhere the view read again after it places it.
  function wouldShow(order) {
    return pageNumber === 1 && !query && view.newestFirst &&
      (statusFilter === 'all' || statusFilter === order.current_status);
  }

  // Show `order` as its event tells it: its row changed, or a new order's row added on top
  // where it surely belongs (a status change of an order not shown adds nothing).
  function upsert(order, isNew) {
    const existing = document.getElementById('order-' + order.order_id);
    if (!existing && !(isNew && wouldShow(order))) return;
    const fresh = row(order);
    if (existing) existing.replaceWith(fresh);
    else body.insertBefore(fresh, body.firstChild);
    while (perPage && body.rows.length > perPage) body.lastElementChild.remove();  // to page 2
    highlight(fresh);
    showEmptyState();
  }

  // The tabs' counts and the view's total, from the server: an event may already be counted in
  // the last answer, so adding it up here could count it twice. Counts ignore the search and
  // the dates, and a plain view's total is that of every status.
  const COUNTS = '/api/orders?status=all&per_page=1';

  // After changes, read from the server what they may have changed: the whole view (filter,
  // search, dates, sort and page) when `viewChanged`, else the counts and total. One read at a
  // time, so an older answer never lands over a newer one.
  let viewChanged = false;
  const read = window.Resound.latest(async function () {
    const whole = viewChanged;
    viewChanged = false;
    try {
      if (whole) {
        const answer = await view.fetch();
        if (!answer) return;
        view.reconcile(body, answer.orders.map(asEvent), row, highlight);
        showTotals(answer);
      } else if (document.querySelector('[data-count-for], #page-total')) {
        showTotals(await window.Resound.api(COUNTS));
      }
    } catch (error) {
      viewChanged = viewChanged || whole;
      throw error;
    }
  });

  function showTotals(answer) {
    setCounts(answer.counts);
    const total = document.getElementById('page-total');
    if (total) total.textContent = String(answer.page.total);
    showEmptyState();
  }

  // The whole view again (after a lost connection, or the admin's bulk changes).
  function reload() {
    viewChanged = true;
    return read();
  }

  // An order as an event tells it: shown at once where it surely belongs; then the view is
  // read again where the event cannot tell what it shows now, else the counts.
  function changed(order, isNew) {
    upsert(order, isNew);
    if (!plain || (isNew && pageNumber > 1)) viewChanged = true;
    read().catch(function (error) {
      window.Resound.say('Could not update the list: ' + error.message, 'error');
    });
  }

  const created = function (order) { changed(order, true); };
  window.Resound.orders = { created: created, asEvent: asEvent, reload: reload };
  window.Resound.live.follow(
    window.Echo.private(table.dataset.channel)
      .listen('.order.created', created)
      .listen('.order.status.updated', function (order) { changed(order, false); }),
    reload
  );
})();
