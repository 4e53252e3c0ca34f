// The customer's order form: several lines, the stock of each product, quantities checked
// before anything is sent, one Idempotency-Key per fill of the form, and the button disabled
// while the order is on its way (a double click places one order).
(function () {
  'use strict';
  const form = document.getElementById('new-order');
  const lines = document.getElementById('order-lines');
  const addButton = document.getElementById('add-line');
  const submit = form.querySelector('button[type="submit"]');
  const estimate = document.getElementById('order-estimate');
  const products = JSON.parse(document.getElementById('products-data').textContent);
  const byId = new Map(products.map(function (product) { return [String(product.id), product]; }));
  const el = window.Resound.element;
  const say = window.Resound.say;
  const template = lines.querySelector('.line').cloneNode(true);
  const moneyFormat = window.Resound.format.money;
  let lineCount = 1;
  let key = window.Resound.idempotencyKey();

  function newKey() {
    key = window.Resound.idempotencyKey();
    form.elements.idempotency_key.value = key;
  }

  function lineParts(line) {
    return { select: line.querySelector('select'), quantity: line.querySelector('input') };
  }

  function syncMax(line) {
    const { select, quantity } = lineParts(line);
    const product = byId.get(select.value);
    quantity.max = String(product ? product.stock : 0);
  }

  function addLine() {
    lineCount += 1;
    const line = template.cloneNode(true);
    const { select, quantity } = lineParts(line);
    line.querySelectorAll('label').forEach(function (label) {
      label.htmlFor = label.htmlFor.replace(/line-\d+/, 'line-' + lineCount);
    });
    select.id = 'line-' + lineCount + '-product';
    quantity.id = 'line-' + lineCount + '-quantity';
    const firstFree = products.find(function (product) {
      return product.stock > 0 && !chosen().includes(String(product.id));
    });
    if (firstFree) select.value = String(firstFree.id);
    const remove = el('button', 'Remove', { type: 'button', class: 'remove' });
    remove.setAttribute('aria-label', 'Remove line ' + lineCount);
    line.appendChild(remove);
    lines.appendChild(line);
    labelOptions();
    syncMax(line);
    select.focus();
    changed();
  }

  // Each product's price (in the viewer's format) and stock, in every line's list.
  function labelOptions() {
    lines.querySelectorAll('option').forEach(function (option) {
      const product = byId.get(option.value);
      option.textContent = product.name + ' — ' + moneyFormat(product.price).textContent +
        ' · ' + (product.stock > 0 ? product.stock + ' in stock' : 'out of stock');
      option.disabled = product.stock < 1;
    });
  }

  function chosen() {
    return Array.from(lines.querySelectorAll('select'), function (select) { return select.value; });
  }

  // The problem with the form, or null; marks the field it is about.
  function problem() {
    const seen = new Set();
    for (const line of lines.querySelectorAll('.line')) {
      const { select, quantity } = lineParts(line);
      const product = byId.get(select.value);
      const amount = Number(quantity.value);
      quantity.setCustomValidity('');
      if (!product) return { field: select, text: 'Choose a product on every line.' };
      if (seen.has(select.value)) {
        return { field: select, text: product.name + ' is on two lines; put it on one line.' };
      }
      seen.add(select.value);
      if (!Number.isInteger(amount) || amount < 1) {
        return { field: quantity, text: 'Enter a whole number of 1 or more for ' + product.name + '.' };
      }
      if (amount > product.stock) {
        return { field: quantity,
                 text: 'Only ' + product.stock + ' ' + product.name + ' in stock; lower the quantity.' };
      }
    }
    return null;
  }

  function items() {
    return Array.from(lines.querySelectorAll('.line'), function (line) {
      const { select, quantity } = lineParts(line);
      return { product_id: Number(select.value), quantity: Number(quantity.value) };
    });
  }

  function showEstimate() {
    let cents = 0;
    items().forEach(function (item) {
      const product = byId.get(String(item.product_id));
      if (product && Number.isInteger(item.quantity) && item.quantity > 0) {
        cents += Math.round(Number(product.price) * 100) * item.quantity;
      }
    });
    estimate.replaceChildren('Total: ', moneyFormat((cents / 100).toFixed(2)));
  }

  // Any change starts a new fill of the form: a new key, and a fresh check.
  function changed() {
    newKey();
    showEstimate();
  }

  form.addEventListener('input', changed);
  form.addEventListener('change', function (event) {
    if (event.target.tagName === 'SELECT') syncMax(event.target.closest('.line'));
    changed();
  });
  lines.addEventListener('click', function (event) {
    if (!event.target.classList.contains('remove')) return;
    event.target.closest('.line').remove();
    addButton.focus();
    changed();
  });
  addButton.addEventListener('click', addLine);

  form.addEventListener('submit', async function (event) {
    event.preventDefault();
    if (submit.disabled) return;
    const found = problem();
    if (found) {
      found.field.setCustomValidity(found.text);
      found.field.focus();
      found.field.reportValidity();
      say(found.text, 'error');
      return;
    }
    submit.disabled = true;
    submit.textContent = 'Placing order…';
    try {
      const answer = await window.Resound.api('/api/orders', {
        method: 'POST', json: { items: items() }, headers: { 'Idempotency-Key': key },
      });
      window.Resound.orders.created(window.Resound.orders.asEvent(answer.order));
      answer.order.items.forEach(function (item) {
        const product = byId.get(String(item.product_id));
        if (product) product.stock -= item.quantity;
      });
      say('Order ' + answer.order.order_number + ' placed. It is at the top of your orders.',
          'success');
      lines.querySelectorAll('.line').forEach(function (line, index) {
        if (index > 0) line.remove();
      });
      lineParts(lines.querySelector('.line')).quantity.value = '1';
      labelOptions();
      syncMax(lines.querySelector('.line'));
      changed();
    } catch (error) {
      say('Order not placed: ' + error.message, 'error');
    } finally {
      submit.disabled = false;
      submit.textContent = 'Place order';
      submit.focus();
    }
  });

  form.elements.idempotency_key.value = key;
  addButton.hidden = false;
  labelOptions();
  syncMax(lines.querySelector('.line'));
  showEstimate();
})();
