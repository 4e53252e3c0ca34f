// The order form: several lines, the price and stock of each product, quantities checked
// before anything is sent (the error next to its field, field-errors.js), one Idempotency-Key
// per fill of the form, and the button disabled while the order is on its way (a double click
// places one order). On "my orders" a phone shows the form folded behind "New order"; on an
// admin's page for a customer (a user_id field) the new order's page opens once it is placed.
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
  const fieldErrors = window.Resound.fieldErrors;
  const formError = document.getElementById('new-order-error');
  const opener = document.getElementById('open-new-order');
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

  function stockWords(product) {
    return product.stock > 0 ? product.stock + ' in stock' : 'out of stock';
  }

  // The line's quantity limit, and its product's price and stock in full under the list
  // (a phone's narrow list cuts the option's text).
  function syncLine(line) {
    const { select, quantity } = lineParts(line);
    const product = byId.get(select.value);
    quantity.max = String(product ? product.stock : 0);
    line.querySelector('.product-info').textContent = product
      ? moneyFormat(product.price).textContent + ' · ' + stockWords(product) : '';
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
    line.querySelector('.product-info').id = select.id + '-info';
    select.setAttribute('aria-describedby', select.id + '-info');
    const firstFree = products.find(function (product) {
      return product.stock > 0 && !chosen().includes(String(product.id));
    });
    if (firstFree) select.value = String(firstFree.id);
    const remove = el('button', 'Remove', { type: 'button', class: 'remove' });
    remove.setAttribute('aria-label', 'Remove line ' + lineCount);
    line.appendChild(remove);
    lines.appendChild(line);
    labelOptions();
    syncLine(line);
    select.focus();
    changed();
  }

  // Each product's price (in the viewer's format) and stock, in every line's list.
  function labelOptions() {
    lines.querySelectorAll('option').forEach(function (option) {
      const product = byId.get(option.value);
      option.textContent = product.name + ' — ' + moneyFormat(product.price).textContent +
        ' · ' + stockWords(product);
      option.disabled = product.stock < 1;
    });
  }

  function chosen() {
    return Array.from(lines.querySelectorAll('select'), function (select) { return select.value; });
  }

  // The problem with the form, or null: the field it is about and what to say.
  function problem() {
    const seen = new Set();
    for (const line of lines.querySelectorAll('.line')) {
      const { select, quantity } = lineParts(line);
      const product = byId.get(select.value);
      const amount = Number(quantity.value);
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
    formError.hidden = true;
    newKey();
    showEstimate();
  }

  form.addEventListener('input', changed);
  form.addEventListener('change', function (event) {
    if (event.target.tagName === 'SELECT') syncLine(event.target.closest('.line'));
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
    formError.hidden = true;
    const found = problem();
    if (found) {
      fieldErrors.show(found.field, found.text);
      return;
    }
    submit.disabled = true;
    submit.textContent = 'Placing order…';
    const forCustomer = form.elements.user_id;
    const body = { items: items() };
    if (forCustomer) body.user_id = Number(forCustomer.value);
    try {
      const answer = await window.Resound.api('/api/orders', {
        method: 'POST', json: body, headers: { 'Idempotency-Key': key },
      });
      if (forCustomer) {
        window.location.assign('/orders/' + answer.order.id);
        return;
      }
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
      syncLine(lines.querySelector('.line'));
      changed();
    } catch (error) {
      formError.textContent = 'Order not placed: ' + error.message;
      formError.hidden = false;
    } finally {
      submit.disabled = false;
      submit.textContent = 'Place order';
      submit.focus();
    }
  });

  // "New order" folds and unfolds the form; app.css folds it only on a phone.
  function fold(folded) {
    form.toggleAttribute('data-folded', folded);
    opener.setAttribute('aria-expanded', String(!folded));
  }

  if (opener) {
    opener.addEventListener('click', function () {
      const opening = form.hasAttribute('data-folded');
      fold(!opening);
      if (opening) lines.querySelector('select').focus();
    });
    fold(true);
    opener.hidden = false;
  }
  form.elements.idempotency_key.value = key;
  fieldErrors.watch(form);
  addButton.hidden = false;
  labelOptions();
  syncLine(lines.querySelector('.line'));
  showEstimate();
})();
