// Issue 20, browser suite: admins and customers do what they expect, a lost connection is
// visible, and the customer's pages work on a phone.
//
// SCENARIO=paused: the admin's order page and the customer's "my orders" are live; the test
//   stops the broadcaster (ask 'stop'). Each page shows the paused banner (after about 5 s),
//   the admin's "Viewing now" greys out, and the admin's "Mark as paid" made meanwhile says the
//   customer will see it when the connection is back. The test starts the broadcaster again
//   (ask 'start'): the banners go by themselves and the customer's row shows the change.
// SCENARIO=phone: at 390 px, a wrong sign-in's error is in the card with the email focused;
//   "my orders" shows the orders first, the form behind "New order", chips in one sideways
//   row, each row one tap target; the product picker's price and stock; a quantity error next
//   to its field, gone when the value changes; a status change said in the live region.
// SCENARIO=people: the admin places an order for the customer BOB_ID from the dashboard's
//   "New order" (whose page is connected before its live.js runs, and goes live all the
//   same); the customer cancels her pending order ORDER_ID from its page.
//
// Input (env): SCENARIO, WEB_URL, PASSWORD, SCREENSHOT_DIR, CHROMIUM, ADMIN_EMAIL,
// CUSTOMER_EMAIL, ORDER_ID (her pending order), ADMIN_TOKEN (phone), BOB_ID (people).
// Output: see browser.mjs.
import { PHONE, ask, env, holdScript, live, runScenario, signIn } from './browser.mjs';

const WEB_URL = env('WEB_URL');
const OUTAGE_MS = 60000;  // the broadcaster's restart and pusher-js's next try, at most

async function openOrderAsAdmin(session) {
  const admin = await session.open('admin');
  await signIn(admin, env('ADMIN_EMAIL'));
  await admin.goto(`${WEB_URL}/orders/${env('ORDER_ID')}`);
  await live(admin);
  await admin.waitForSelector('#viewers li');
  return admin;
}

async function openMyOrders(session) {
  const customer = await session.open('customer');
  await signIn(customer, env('CUSTOMER_EMAIL'));
  await live(customer);
  return customer;
}

const banner = (page) => page.evaluate(() => {
  const node = document.getElementById('paused');
  return { shown: !node.hidden, text: node.textContent,
    since: node.querySelector('time').dateTime, body: document.body.dataset.live ?? null };
});

async function paused(session) {
  // What pusher-js logs while the broadcaster is down: its failed tries, and the wss:// try it
  // falls back to, which the page's Content-Security-Policy (ws:// only) blocks.
  session.allow(/WebSocket connection to .* failed|ERR_CONNECTION_REFUSED/);
  session.allow(/Connecting to 'wss:.* violates the following Content Security Policy/);
  const admin = await openOrderAsAdmin(session);
  const customer = await openMyOrders(session);
  const row = `#order-${env('ORDER_ID')} td.status`;
  const beforeStop = await banner(admin);
  const stoppedAt = new Date().toISOString();
  await ask('stop');
  const pausedSelector = '#paused:not([hidden])';
  await Promise.all([admin.waitForSelector(pausedSelector, { timeout: OUTAGE_MS }),
    customer.waitForSelector(pausedSelector, { timeout: OUTAGE_MS })]);
  const whileAway = { admin: await banner(admin), customer: await banner(customer),
    viewerDot: await admin.$eval('#viewers li', (item) => getComputedStyle(item, '::before')
      .backgroundColor),
    viewersColor: await admin.$eval('#viewers', (list) => getComputedStyle(list).color) };
  await admin.click('#transition-buttons button[value="paid"]');
  await admin.waitForSelector('#messages .message-success');
  const message = await admin.textContent('#messages');
  const customerRow = await customer.getAttribute(row, 'data-status');
  await session.shoot(admin, 'admin-order-paused');
  await ask('start');
  await Promise.all([admin, customer].map((page) => page.waitForSelector(
    '#paused[hidden]', { state: 'attached', timeout: OUTAGE_MS })));
  await customer.waitForSelector(`${row}[data-status="paid"]`, { timeout: OUTAGE_MS });
  return { beforeStop, stoppedAt, whileAway, message, customerRow,
    back: { admin: await banner(admin), customer: await banner(customer) } };
}

// What the phone shows: which of the list and the form is on screen first, the rows as tap
// targets (height, and what a tap at the row's middle and edges hits), the chips.
const phoneLayout = (page) => page.evaluate(() => {
  const top = (selector) => {
    const node = document.querySelector(selector);
    return node && node.getClientRects().length ? node.getBoundingClientRect().top : null;
  };
  const rows = [...document.querySelectorAll('#orders tbody tr')].map((row) => {
    const box = row.getBoundingClientRect();
    const link = row.querySelector('a').href;
    const hits = [box.left + 4, box.left + box.width / 2, box.right - 4].map((x) => {
      // Centre the row from where it is now (the page scrolls between probes).
      row.scrollIntoView({ block: 'center' });
      const now = row.getBoundingClientRect();
      const hit = document.elementFromPoint(x, now.top + now.height / 2);
      return hit?.closest('a')?.href === link;
    });
    return { height: box.height, hits };
  });
  const chips = document.querySelector('.tabs ul');
  return {
    ordersTop: top('#orders'), formTop: top('#new-order'), buttonTop: top('#open-new-order'),
    rows,
    chips: { tops: [...new Set([...chips.querySelectorAll('a')].map(
      (a) => Math.round(a.getBoundingClientRect().top)))].length,
    scrolls: chips.scrollWidth > chips.clientWidth,
    overflow: getComputedStyle(chips).overflowX },
    pageScrollsSideways: document.documentElement.scrollWidth > window.innerWidth,
  };
});

const fieldState = (page, id) => page.$eval(`#${id}`, (field) => {
  const error = document.getElementById(`${field.id}-error`);
  const box = field.getBoundingClientRect();
  return { invalid: field.getAttribute('aria-invalid'),
    describedBy: field.getAttribute('aria-describedby'),
    error: error?.textContent ?? null,
    gap: error ? error.getBoundingClientRect().top - box.bottom : null,
    nativeBubble: field.validationMessage !== '' && field.validity.customError,
    banner: document.getElementById('messages').textContent };
});

async function phone(session) {
  session.allow(/status of 401/);  // the wrong password
  const customer = await session.open('customer');
  await customer.setViewportSize(PHONE);
  await customer.goto(`${WEB_URL}/login`);
  await customer.fill('input[name="email"]', env('CUSTOMER_EMAIL'));
  await customer.fill('input[name="password"]', 'not the password');
  await Promise.all([customer.waitForNavigation(), customer.click('button[type="submit"]')]);
  // The browser focuses an autofocus field at its next rendering update: wait for it (or time
  // out, and report where the focus is).
  await customer.waitForFunction(() => document.activeElement?.id === 'email')
    .catch(() => null);
  const login = await customer.evaluate(() => ({
    focused: document.activeElement.id,
    inCard: !!document.querySelector('.login-card [role="alert"]'),
    error: document.querySelector('.login-card [role="alert"]')?.textContent ?? null,
  }));
  await session.shoot(customer, 'login-refused');
  await signIn(customer, env('CUSTOMER_EMAIL'));
  await live(customer);
  const folded = await phoneLayout(customer);
  await session.shoot(customer, 'customer-phone-orders');

  await customer.click('#open-new-order');
  const opened = { expanded: await customer.getAttribute('#open-new-order', 'aria-expanded'),
    focused: await customer.evaluate(() => document.activeElement.id),
    formVisible: await customer.isVisible('#new-order') };
  const products = await customer.$$eval('#line-1-product option:not([disabled])',
    (options) => options.map((option) => option.value));
  const picker = [];
  for (const id of products) {
    await customer.selectOption('#line-1-product', id);
    picker.push(await customer.$eval('#line-1-product-info', (info) => ({
      text: info.textContent, whole: info.scrollWidth <= info.clientWidth,
      visible: info.getClientRects().length > 0 })));
  }
  await customer.fill('#line-1-quantity', '99999');
  await customer.click('#new-order button[type="submit"]');
  await customer.waitForSelector('#line-1-quantity-error');
  const refused = await fieldState(customer, 'line-1-quantity');
  refused.focused = await customer.evaluate(() => document.activeElement.id);
  await session.shoot(customer, 'customer-phone-order-form-error');
  await customer.fill('#line-1-quantity', '1');
  const cleared = await fieldState(customer, 'line-1-quantity');

  const answer = await fetch(`${WEB_URL}/api/orders/${env('ORDER_ID')}/transition`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${env('ADMIN_TOKEN')}` },
    body: JSON.stringify({ status: 'paid' }),
  });
  if (!answer.ok) throw new Error(`transition: ${answer.status} ${await answer.text()}`);
  const region = await customer.waitForFunction(
    () => document.getElementById('list-announcer').textContent).then((h) => h.jsonValue());
  const regionPolite = await customer.getAttribute('#list-announcer', 'aria-live');
  return { login, folded, opened, picker, refused, cleared,
    announced: { text: region, polite: regionPolite } };
}

// The next page `page` loads gets its live.js only once its socket is connected: the page must
// go live all the same (it stayed "Updating…" once: live.js missed the connection's change).
const connectBeforeLiveJs = (page) => holdScript(page, 'live.js', () => page.waitForFunction(
  () => window.Echo?.connector?.pusher?.connection.state === 'connected', null, { polling: 20 }));

async function people(session) {
  const admin = await session.open('admin');
  await signIn(admin, env('ADMIN_EMAIL'));
  await live(admin);
  await connectBeforeLiveJs(admin);
  await Promise.all([admin.waitForURL('**/admin/orders/new'), admin.click('#new-order-link')]);
  await live(admin);
  await admin.selectOption('#customer', env('BOB_ID'));
  await Promise.all([admin.waitForURL('**/admin/orders/new?customer=*'),
    admin.click('#choose-customer button[type="submit"]')]);
  await live(admin);
  await session.shoot(admin, 'admin-new-order-for-customer');
  await admin.fill('#line-1-quantity', '2');
  await Promise.all([admin.waitForURL(/\/orders\/\d+$/), admin.click('#new-order button[type="submit"]')]);
  await live(admin);
  const placed = { orderId: Number(new URL(admin.url()).pathname.split('/').pop()),
    customer: await admin.textContent('.facts dd') };

  const customer = await session.open('customer');
  await signIn(customer, env('CUSTOMER_EMAIL'));
  await customer.goto(`${WEB_URL}/orders/${env('ORDER_ID')}`);
  await live(customer);
  const buttons = await customer.$$eval('#transition-buttons button', (all) => all.map((b) => b.value));
  await customer.click('#transition-buttons button[value="cancelled"]');
  await customer.waitForSelector('#confirm-dialog[open]');
  await session.shoot(customer, 'customer-cancel-confirm');
  await customer.click('#confirm-yes');
  await customer.waitForSelector('#order-status[data-status="cancelled"]');
  return { placed, buttons,
    afterCancel: { editorHidden: await customer.isHidden('#editor'),
      message: await customer.textContent('#messages'),
      history: await customer.$$eval('#history li', (items) => items.map((item) => [
        ...item.querySelectorAll('.from, .badge')].map((part) => part.textContent).join(' '))) } };
}

const SCENARIOS = { paused, phone, people };
const scenario = SCENARIOS[env('SCENARIO')];
if (!scenario) throw new Error(`SCENARIO must be one of ${Object.keys(SCENARIOS).join(', ')}`);
runScenario(scenario);
