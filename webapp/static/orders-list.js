// The orders table (admin dashboard or "my orders"): new orders appear, statuses change live,
// and the dashboard's status tabs keep their counts. Rows that appear or change are highlighted.
// After each change the view is read again (orders-view.js), so a filtered, searched or sorted
// list drops the rows that left it and takes in those that entered it.
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

  // A new order belongs at the top of this table only on the first page of a newest-first view
  // it matches; elsewhere the view read again after it places it.
  function wouldShow(order) {
    return pageNumber === 1 && !query && view.newestFirst &&
      (statusFilter === 'all' || statusFilter === order.current_status);
  }

  function upsert(order) {
    const existing = document.getElementById('order-' + order.order_id);
    if (!existing && !wouldShow(order)) return;
    const fresh = row(order);
    if (existing) existing.replaceWith(fresh);
    else body.insertBefore(fresh, body.firstChild);
    while (perPage && body.rows.length > perPage) body.lastElementChild.remove();  // to page 2
    highlight(fresh);
    showEmptyState();
  }

  // The whole view again (filter, search, dates, sort and page) and the tabs' counts, from the
  // server: an event may already be counted in the last answer, so adding it up here could
  // count it twice.
  const reload = window.Resound.latest(async function () {
    const answer = await view.fetch();
    if (!answer) return;
    view.reconcile(body, answer.orders.map(asEvent), row, highlight);
    setCounts(answer.counts);
    const total = document.getElementById('page-total');
    if (total) total.textContent = String(answer.page.total);
    showEmptyState();
  });

  // An order as an event tells it: shown at once where it surely belongs, then the view is read
  // again.
  function changed(order) {
    upsert(order);
    reload().catch(function (error) {
      window.Resound.say('Could not update the list: ' + error.message, 'error');
    });
  }

  window.Resound.orders = { created: changed, asEvent: asEvent, reload: reload };
  window.Resound.live.follow(
    window.Echo.private(table.dataset.channel)
      .listen('.order.created', changed)
      .listen('.order.status.updated', changed),
    reload
  );
})();
