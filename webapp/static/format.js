// Money and times in the viewer's locale and time zone. The server renders plain values
// (<data value="1234.56">, <time datetime="ISO">); this shows them the viewer's way, and
// builds the same elements for rows and entries the scripts add later.
(function () {
  'use strict';
  const el = window.Resound.element;
  const currency = document.body.dataset.currency;
  const moneyFormat = new Intl.NumberFormat(undefined, { style: 'currency', currency: currency });
  const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

  function showMoney(node) {
    node.textContent = moneyFormat.format(Number(node.value));
  }

  function showTime(node) {
    const moment = new Date(node.dateTime);
    if (Number.isNaN(moment.getTime())) return;
    node.textContent = timeFormat.format(moment);
    node.title = moment.toString();
  }

  // Format every amount and time under `root` (the document, or a new row).
  function localize(root) {
    root.querySelectorAll('data.money').forEach(showMoney);
    root.querySelectorAll('time[datetime]').forEach(showTime);
    return root;
  }

  function money(amount) {
    const node = el('data', null, { class: 'money', value: amount, 'data-currency': currency });
    showMoney(node);
    return node;
  }

  function time(iso) {
    const node = el('time', iso, { datetime: iso });
    showTime(node);
    return node;
  }

  function badge(status, label) {
    return el('span', label, { class: 'badge', 'data-status': status });
  }

  localize(document);
  window.Resound.format = { localize: localize, money: money, time: time, badge: badge };
})();
