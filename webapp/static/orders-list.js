// The orders table (admin dashboard or "my orders"): new orders appear, statuses change live,
// and the dashboard's status tabs keep their counts. Rows that appear or change are highlighted.
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
    tr.appendChild(cell(format.time(order.updated_at), { class: 'updated', 'data-label': 'Updated' }));
    return tr;
  }

  // An order as the API answers it, in the shape of the broadcast events.
  function asEvent(order) {
    return {
      order_id: order.id, order_number: order.order_number, user: order.user,
      current_status: order.status, current_status_label: order.status_label,
      items_count: order.items_count, total: order.total, updated_at: order.updated_at,
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
    // Without a search, this view's total is its tab's count.
    const total = document.getElementById('page-total');
    if (total && counts && !query && counts[statusFilter] !== undefined) {
      total.textContent = String(counts[statusFilter]);
    }
  }

  // The tabs' counts after an event, from the server: an event may already be counted in the
  // last answer, so adding it up here could count it twice. One request at a time.
  let countsLoading = null;
  let countsAgain = false;
  function reloadCounts() {
    if (!document.querySelector('[data-count-for]')) return;
    if (countsLoading) {
      countsAgain = true;
      return;
    }
    countsLoading = (async function () {
      do {
        countsAgain = false;
        setCounts((await window.Resound.api('/api/orders?status=all&per_page=1')).counts);
      } while (countsAgain);
    })().catch(function (error) {
      window.Resound.say('Could not update the counts: ' + error.message, 'error');
    }).finally(function () { countsLoading = null; });
  }

  function highlight(tr) {
    tr.classList.add('changed');
    tr.addEventListener('animationend', function () { tr.classList.remove('changed'); },
                        { once: true });
  }

  // A new order belongs at the top of this table only on the first page of a view it matches;
  // elsewhere the tab counts tell the admin it came.
  function wouldShow(order) {
    return pageNumber === 1 && !query &&
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

  function changed(order) {
    upsert(order);
    reloadCounts();
  }

  // The whole view again (same filter, search and page), as the page first showed it.
  async function reload() {
    const params = new URLSearchParams({ status: statusFilter, q: query, page: pageNumber });
    const answer = await window.Resound.api('/api/orders?' + params);
    body.replaceChildren(...answer.orders.map(function (order) { return row(asEvent(order)); }));
    setCounts(answer.counts);
    showEmptyState();
  }

  window.Resound.orders = { created: upsert, asEvent: asEvent, reload: reload };
  window.Resound.live.follow(
    window.Echo.private(table.dataset.channel)
      .listen('.order.created', changed)
      .listen('.order.status.updated', changed),
    reload
  );
})();
