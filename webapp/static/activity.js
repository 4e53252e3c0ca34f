// The admin dashboard's "Online now" and "Viewing orders" lists: the page's snapshot first, then
// each activity.updated snapshot from private-admin.orders (the webhooks' view, see activity.py).
(function () {
  'use strict';
  const el = window.Resound.element;
  const online = document.getElementById('online');
  const viewing = document.getElementById('viewing');

  function render(view) {
    online.replaceChildren(...view.online.map(function (user) {
      return el('li', user.name, { 'data-user-id': user.id });
    }));
    viewing.replaceChildren(...view.viewing.map(function (entry) {
      const item = el('li', entry.user.name + ' is viewing order ',
                      { 'data-user-id': entry.user.id, 'data-order-id': entry.order_id });
      item.appendChild(el('a', entry.order_number, { href: '/orders/' + entry.order_id }));
      return item;
    }));
  }

  // After a reconnect: the view again, as the lost connection may have missed changes.
  async function reload() {
    render(await window.Resound.api('/api/activity'));
  }

  render(JSON.parse(document.getElementById('activity-data').textContent));
  window.Resound.live.follow(
    window.Echo.private('admin.orders').listen('.activity.updated', render), reload);
})();
