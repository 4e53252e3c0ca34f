// The admin list's bulk actions: a checkbox on each row, a bar that moves the selected orders
// to a status (POST /api/orders/transition, each order on its own; cancel and refund ask
// first), and a one-click next step on each row ("Mark paid", "Start processing", "Ship",
// "Deliver"). Both send the status each row shows (expected_status): an order changed
// meanwhile is refused with the reason, never moved from a stale view. Rows that
// orders-list.js adds or replaces get their checkbox and button here.
(function () {
  'use strict';
  const table = document.getElementById('orders');
  const bar = document.getElementById('bulk-bar');
  if (!table || !bar) return;
  const body = table.querySelector('tbody');
  const config = JSON.parse(document.getElementById('bulk-config').textContent);
  const el = window.Resound.element;
  const api = window.Resound.api;
  const say = window.Resound.say;
  const count = document.getElementById('bulk-count');
  const target = document.getElementById('bulk-status');
  const apply = document.getElementById('bulk-apply');
  const clear = document.getElementById('bulk-clear');
  const report = document.getElementById('bulk-report');
  const dialog = document.getElementById('bulk-confirm');
  const MAX_PER_REQUEST = 100;
  const selected = new Set();  // order ids, as strings
  let selectAll = null;

  function numberOf(row) {
    return row.querySelector('a').textContent.trim();
  }

  function rows() {
    return Array.from(body.rows).filter(function (row) { return row.dataset.orderId; });
  }

  function decorateHead() {
    const head = table.tHead.rows[0];
    if (head.querySelector('th.select')) return;
    selectAll = el('input', null, { type: 'checkbox', id: 'select-all',
                                    'aria-label': 'Select every order on this page' });
    const first = el('th', null, { scope: 'col', class: 'select' });
    first.appendChild(selectAll);
    head.insertBefore(first, head.firstChild);
    head.appendChild(el('th', 'Next step', { scope: 'col', class: 'next' }));
    selectAll.addEventListener('change', function () {
      rows().forEach(function (row) {
        if (selectAll.checked) selected.add(row.dataset.orderId);
        else selected.delete(row.dataset.orderId);
      });
      refreshSelection();
    });
  }

  function nextButton(row) {
    const next = config.next[row.dataset.status];
    if (!next) return null;
    const button = el('button', next[1], { type: 'button', class: 'next-step',
                                           'data-next': next[0] });
    button.appendChild(el('span', ' ' + numberOf(row), { class: 'visually-hidden' }));
    return button;
  }

  // Give `row` its checkbox (first) and its next-step cell (last), once.
  function decorate(row) {
    if (!row.dataset.orderId || row.querySelector('td.select')) return;
    const box = el('input', null, { type: 'checkbox', class: 'select-order',
                                    value: row.dataset.orderId,
                                    'aria-label': 'Select ' + numberOf(row) });
    box.checked = selected.has(row.dataset.orderId);
    const first = el('td', null, { class: 'select', 'data-label': 'Select' });
    first.appendChild(box);
    row.insertBefore(first, row.firstChild);
    const last = el('td', null, { class: 'next', 'data-label': 'Next step' });
    const button = nextButton(row);
    if (button) last.appendChild(button);
    row.appendChild(last);
  }

  function decorateAll() {
    rows().forEach(decorate);
    refreshSelection();
  }

  // The selection keeps only the rows this page shows; the bar says how many.
  function refreshSelection() {
    const shown = new Set(rows().map(function (row) { return row.dataset.orderId; }));
    Array.from(selected).forEach(function (id) { if (!shown.has(id)) selected.delete(id); });
    body.querySelectorAll('input.select-order').forEach(function (box) {
      box.checked = selected.has(box.value);
    });
    const n = selected.size;
    count.textContent = n === 0 ? 'No orders selected'
      : n + (n === 1 ? ' order selected' : ' orders selected');
    apply.disabled = n === 0;
    clear.disabled = n === 0;
    if (selectAll) {
      selectAll.checked = n > 0 && n === shown.size;
      selectAll.indeterminate = n > 0 && n < shown.size;
    }
  }

  // Resolve true when the admin confirms the question in the dialog.
  function confirmed(question, yes) {
    document.getElementById('bulk-confirm-title').textContent = question;
    document.getElementById('bulk-confirm-yes').textContent = yes;
    return window.Resound.ask(dialog);
  }

  function setBusy(busy) {
    bar.setAttribute('aria-busy', String(busy));
    apply.disabled = busy || selected.size === 0;
    clear.disabled = busy || selected.size === 0;
    target.disabled = busy;
  }

  // The orders' (id, number, status shown) in the table's order, and the answers, in chunks
  // of at most MAX_PER_REQUEST.
  async function move(orders, status) {
    const results = [];
    for (let start = 0; start < orders.length; start += MAX_PER_REQUEST) {
      const chunk = orders.slice(start, start + MAX_PER_REQUEST);
      const answer = await api('/api/orders/transition', { method: 'POST', json: {
        status: status,
        orders: chunk.map(function (o) { return { id: o.id, expected_status: o.status }; }),
      } });
      results.push(...answer.results);
    }
    return results;
  }

  function showReport(orders, results, status) {
    const numbers = new Map(orders.map(function (o) { return [o.id, o.number]; }));
    const moved = results.filter(function (r) { return r.ok; });
    const refused = results.filter(function (r) { return !r.ok; });
    const label = config.labels[status];
    const parts = [el('p', 'Moved ' + moved.length + ' of ' + results.length +
                          (results.length === 1 ? ' order' : ' orders') + ' to ' + label + '.')];
    if (refused.length) {
      parts.push(el('p', refused.length + ' refused:'));
      const list = el('ul', null, { class: 'bulk-refused' });
      refused.forEach(function (r) {
        list.appendChild(el('li', numbers.get(r.id) + ': ' + r.error, { 'data-order-id': r.id }));
      });
      parts.push(list);
    }
    report.replaceChildren(...parts);
    moved.forEach(function (r) { selected.delete(String(r.id)); });
  }

  async function applyToSelected() {
    const status = target.value;
    const label = config.labels[status];
    const orders = rows().filter(function (row) { return selected.has(row.dataset.orderId); })
      .map(function (row) {
        return { id: Number(row.dataset.orderId), number: numberOf(row),
                 status: row.dataset.status };
      });
    if (!orders.length) return;
    const n = orders.length + (orders.length === 1 ? ' order' : ' orders');
    if (config.confirm.includes(status) &&
        !(await confirmed('Move ' + n + ' to ' + label + '?', 'Yes, move ' + n))) {
      apply.focus();
      return;
    }
    setBusy(true);
    report.replaceChildren();
    try {
      showReport(orders, await move(orders, status), status);
    } catch (error) {
      report.replaceChildren(el('p', 'Nothing moved: ' + error.message));
    } finally {
      setBusy(false);
    }
    await window.Resound.orders.reload();
    decorateAll();
    apply.focus();
  }

  async function nextStep(button) {
    const row = button.closest('tr');
    const id = row.dataset.orderId;
    const number = numberOf(row);
    button.disabled = true;
    try {
      const answer = await api('/api/orders/' + id + '/transition', { method: 'POST',
        json: { status: button.dataset.next, expected_status: row.dataset.status } });
      say('Order ' + number + ' is ' + answer.order.status_label + ' now.', 'success');
    } catch (error) {
      if (error.status === 409) {
        say('Not changed, someone else changed order ' + number + ' first: ' + error.message +
            '. The list shows its current status now; choose again.', 'error');
      } else {
        say('Order ' + number + ' not changed: ' + error.message, 'error');
      }
    }
    await window.Resound.orders.reload();
    decorateAll();
    const fresh = document.getElementById('order-' + id);
    if (fresh) (fresh.querySelector('button.next-step') || fresh.querySelector('a')).focus();
  }

  body.addEventListener('change', function (event) {
    if (!event.target.matches('input.select-order')) return;
    if (event.target.checked) selected.add(event.target.value);
    else selected.delete(event.target.value);
    refreshSelection();
  });
  body.addEventListener('click', function (event) {
    const button = event.target.closest('button.next-step');
    if (button) nextStep(button);
  });
  apply.addEventListener('click', applyToSelected);
  clear.addEventListener('click', function () {
    selected.clear();
    report.replaceChildren();
    refreshSelection();
  });
  new MutationObserver(decorateAll).observe(body, { childList: true });

  decorateHead();
  decorateAll();
  bar.hidden = false;
})();
