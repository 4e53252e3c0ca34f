// One order: live status, history and next-status buttons, and who is viewing it (presence).
(function () {
  'use strict';
  const article = document.getElementById('order');
  const orderId = Number(article.dataset.orderId);
  const isAdmin = JSON.parse(article.dataset.isAdmin);
  const el = window.Resound.element;
  const api = window.Resound.api;
  const liveStatus = document.getElementById('live-status');

  function renderButtons(order) {
    const holder = document.getElementById('transition-buttons');
    if (!holder) return;
    holder.replaceChildren();
    order.allowed_transitions.forEach(function (next) {
      holder.appendChild(el('button', next.label,
                            { type: 'submit', name: 'status', value: next.status }));
    });
    if (!order.allowed_transitions.length) {
      holder.appendChild(el('em', 'Final status: no further changes.'));
    }
  }

  function renderHistory(order) {
    const list = document.getElementById('history');
    list.replaceChildren();
    order.history.forEach(function (entry) {
      let text = entry.at + ': ' + (entry.from || '—') + ' → ' + entry.to;
      if (entry.changed_by) text += ' by ' + entry.changed_by;
      if (entry.notes) text += ' (' + entry.notes + ')';
      list.appendChild(el('li', text, { 'data-to': entry.to }));
    });
  }

  function render(order) {
    const status = document.getElementById('order-status');
    status.textContent = order.status_label;
    status.dataset.status = order.status;
    renderButtons(order);
    renderHistory(order);
  }

  async function refresh() {
    try {
      render((await api('/api/orders/' + orderId)).order);
    } catch (error) {
      liveStatus.textContent = 'Could not reload the order: ' + error.message;
    }
  }

  const form = document.getElementById('transitions');
  if (form && isAdmin) {
    form.addEventListener('submit', async function (event) {
      event.preventDefault();
      const status = event.submitter && event.submitter.value;
      const notes = form.elements.notes.value;
      try {
        const answer = await api('/api/orders/' + orderId + '/transition',
                                 { method: 'POST', json: { status: status, notes: notes } });
        form.elements.notes.value = '';
        render(answer.order);
      } catch (error) {
        liveStatus.textContent = 'Status not changed: ' + error.message;
      }
    });
  }

  window.Resound.whenSubscribed(
    window.Echo.private(article.dataset.channel).listen('.order.status.updated', function (e) {
      if (e.order_id === orderId) refresh();
    }),
    refresh
  );

  const viewers = document.getElementById('viewers');
  function addViewer(user) {
    if (viewers.querySelector('[data-user-id="' + user.id + '"]')) return;
    viewers.appendChild(el('li', user.name, { 'data-user-id': user.id }));
  }
  window.Echo.join('orders.' + orderId + '.viewers')
    .here(function (users) { viewers.replaceChildren(); users.forEach(addViewer); })
    .joining(addViewer)
    .leaving(function (user) {
      const item = viewers.querySelector('[data-user-id="' + user.id + '"]');
      if (item) item.remove();
    });
})();
