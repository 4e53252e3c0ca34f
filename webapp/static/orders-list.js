// The orders table (admin dashboard or "my orders"): new orders appear, statuses change live.
(function () {
  'use strict';
  const table = document.getElementById('orders');
  const body = table.querySelector('tbody');
  const showCustomer = JSON.parse(table.dataset.showCustomer);
  const el = window.Resound.element;

  function row(order) {
    const tr = el('tr', null, { id: 'order-' + order.order_id, 'data-order-id': order.order_id });
    const link = el('a', order.order_number, { href: '/orders/' + order.order_id });
    const first = el('td');
    first.appendChild(link);
    tr.appendChild(first);
    if (showCustomer) tr.appendChild(el('td', order.user.name, { class: 'customer' }));
    tr.appendChild(el('td', order.current_status_label,
                      { class: 'status', 'data-status': order.current_status }));
    tr.appendChild(el('td', order.items_count, { class: 'items' }));
    tr.appendChild(el('td', order.total, { class: 'total' }));
    const updated = el('td', null, { class: 'updated' });
    updated.appendChild(el('time', order.updated_at));
    tr.appendChild(updated);
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

  // After a reconnect: the whole list again, newest first as the page first showed it.
  async function reload() {
    try {
      const orders = (await window.Resound.api('/api/orders')).orders;
      body.replaceChildren(...orders.map(function (order) { return row(asEvent(order)); }));
    } catch (error) {
      document.getElementById('live-status').textContent =
        'Could not reload the orders: ' + error.message;
    }
  }

  function upsert(order) {
    const fresh = row(order);
    const existing = document.getElementById('order-' + order.order_id);
    if (existing) {
      existing.replaceWith(fresh);
    } else {
      body.insertBefore(fresh, body.firstChild);
    }
    fresh.classList.add('changed');
  }

  // Our own new order comes back from the API, not as an event: the request carried our
  // socket id, so the broadcast skips this socket (toOthers).
  const form = document.getElementById('new-order');
  if (form) {
    form.addEventListener('submit', async function (event) {
      event.preventDefault();
      const item = {
        product_id: Number(form.elements.product_id.value),
        quantity: Number(form.elements.quantity.value),
      };
      try {
        const order = (await window.Resound.api('/api/orders',
                                                { method: 'POST', json: { items: [item] } })).order;
        upsert(asEvent(order));
      } catch (error) {
        document.getElementById('live-status').textContent = 'Order not placed: ' + error.message;
      }
    });
  }

  window.Resound.whenSubscribed(
    window.Echo.private(table.dataset.channel)
      .listen('.order.created', upsert)
      .listen('.order.status.updated', upsert),
    reload
  );
})();
