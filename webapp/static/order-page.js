// One order: live status, history and the next-status buttons, and who is viewing it (presence).
// A status change sends the status this page shows (expected_status): if another admin changed
// the order meanwhile, the server answers 409 and the page says so instead of acting on a
// stale view. Cancel and refund ask first. A customer's pending order has the same form with
// one button, "Cancel order"; a final order has no form (it goes when the order becomes final).
(function () {
  'use strict';
  const article = document.getElementById('order');
  const orderId = Number(article.dataset.orderId);
  const isAdmin = JSON.parse(article.dataset.isAdmin);
  const el = window.Resound.element;
  const api = window.Resound.api;
  const say = window.Resound.say;
  const format = window.Resound.format;
  const form = document.getElementById('transitions');
  const actions = form ? JSON.parse(document.getElementById('action-labels').textContent) : null;
  const dialog = document.getElementById('confirm-dialog');
  let shown = document.getElementById('order-status').dataset.status;

  function renderButtons(order) {
    const holder = document.getElementById('transition-buttons');
    if (!holder) return;
    const editor = document.getElementById('editor');
    const done = order.final || !order.allowed_transitions.length;
    const focused = holder.contains(document.activeElement) ? document.activeElement.value : null;
    holder.replaceChildren(...order.allowed_transitions.map(function (next) {
      return el('button', actions.labels[next.status] || next.label,
                { type: 'submit', name: 'status', value: next.status });
    }));
    form.elements.expected_status.value = order.status;
    if (done && focused !== null) document.getElementById('order-status').focus();
    editor.hidden = done;
    if (focused === null || done) return;
    // Keep the keyboard where it was: the same button if it is still offered, else the status.
    const same = holder.querySelector('button[value="' + focused + '"]');
    (same || document.getElementById('order-status')).focus();
  }

  function renderHistory(order) {
    const list = document.getElementById('history');
    list.replaceChildren(...order.history.map(function (entry) {
      const item = el('li', null, { 'data-to': entry.to });
      if (entry.from) item.append(el('span', entry.from_label + ' →', { class: 'from' }), ' ');
      item.appendChild(format.badge(entry.to, entry.to_label));
      const when = el('span', null, { class: 'when' });
      when.appendChild(format.time(entry.at));
      if (entry.changed_by) when.append(' · by ' + entry.changed_by);
      item.appendChild(when);
      if (entry.notes) item.appendChild(el('span', '“' + entry.notes + '”', { class: 'note' }));
      return item;
    }));
  }

  function render(order) {
    const status = document.getElementById('order-status');
    status.textContent = order.status_label;
    status.dataset.status = order.status;
    shown = order.status;
    document.getElementById('order-updated').replaceChildren(format.time(order.updated_at));
    renderButtons(order);
    renderHistory(order);
  }

  async function refresh() {
    render((await api('/api/orders/' + orderId)).order);
  }

  // Resolve true when the admin confirms `label` for this order in the dialog.
  function confirmed(label) {
    document.getElementById('confirm-title').textContent =
      label + ' ' + article.dataset.orderNumber + '?';
    document.getElementById('confirm-text').textContent = isAdmin
      ? 'This cannot be undone, and the customer sees it at once.'
      : 'This cannot be undone; its items go back in stock.';
    document.getElementById('confirm-yes').textContent = 'Yes, ' + label.toLowerCase();
    return window.Resound.ask(dialog);
  }

  function setBusy(busy) {
    form.querySelectorAll('button').forEach(function (button) { button.disabled = busy; });
    form.setAttribute('aria-busy', String(busy));
  }

  async function change(button) {
    const label = button.textContent;
    if (actions.confirm.includes(button.value) && !(await confirmed(label))) {
      button.focus();
      return;
    }
    setBusy(true);
    try {
      const answer = await api('/api/orders/' + orderId + '/transition', {
        method: 'POST',
        json: { status: button.value, expected_status: shown,
                notes: form.elements.notes ? form.elements.notes.value : '' },
      });
      if (form.elements.notes) form.elements.notes.value = '';
      setBusy(false);
      button.focus();
      render(answer.order);
      say('Order ' + article.dataset.orderNumber + ' is ' + answer.order.status_label + ' now.' +
          (isAdmin ? window.Resound.live.pausedNote('the customer') : ''), 'success');
    } catch (error) {
      setBusy(false);
      button.focus();
      if (error.status === 409) {
        say('Not changed, someone else changed this order first: ' + error.message +
            '. The page shows the current status now; choose again.', 'error');
        refresh().catch(function () { /* the live connection retries */ });
      } else {
        say('Status not changed: ' + error.message, 'error');
      }
    }
  }

  if (form) {
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      if (event.submitter && event.submitter.name === 'status') change(event.submitter);
    });
  }

  window.Resound.live.follow(
    window.Echo.private(article.dataset.channel).listen('.order.status.updated', function (e) {
      if (e.order_id === orderId) refresh().catch(function (error) { say(error.message, 'error'); });
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
