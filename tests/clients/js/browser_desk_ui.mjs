// Issue 13, browser suite: the order desk's bugs and actions in headless Chromium.
//
// SCENARIO=back_forward: "my orders" is live; the customer opens an order, an admin changes it,
//   the customer goes Back: when the page says "Live" again, its row shows the change.
// SCENARIO=double_click: a double click on "Place order" sends one Idempotency-Key and places
//   one order (the test counts the orders through the API). The sign-in page is shot first.
// SCENARIO=order_form: two lines; a quantity above the stock is refused before anything is sent;
//   then the order is placed with both lines.
// SCENARIO=stale_click: the admin's order page missed a change (its socket was down); clicking
//   the old next status gets the 409 message, keeps the note, and shows the current status;
//   "Reconnect now" makes it live again.
// SCENARIO=confirm: "Cancel order" asks first; "Keep the order" sends nothing, "Yes" cancels.
// SCENARIO=signed_out: two tabs of one customer; she signs out in one. The other tab's socket
//   ends (TERMINATE_URL, if given, is the broadcaster's signed terminate_connections call, made
//   here as the sign-out of a later branch makes it; without it the sign-out must end it) and
//   the tab shows "You signed out" with a link back to itself through the sign-in page.
//
// Input (env): SCENARIO, WEB_URL, PASSWORD, SCREENSHOT_DIR, CHROMIUM, ADMIN_EMAIL,
// CUSTOMER_EMAIL, ADMIN_TOKEN (API calls an admin makes meanwhile), ORDER_ID; SECOND_PRODUCT_ID
// (order_form); TERMINATE_URL (signed_out). Output: see browser.mjs.
import { adminMoves, env, live, runScenario, signIn } from './browser.mjs';

const WEB_URL = env('WEB_URL');

// Wait for "Live" and read, in the same turn of the page, what the row shows.
const statusWhenLive = (page, id) => page.waitForFunction((orderId) => {
  const live = document.querySelector('#live-status[data-subscribed="true"]');
  return live && document.querySelector(`#order-${orderId} td.status`).dataset.status;
}, id).then((handle) => handle.jsonValue());

async function backForward(session) {
  const id = env('ORDER_ID');
  const customer = await session.open('customer');
  await signIn(customer, env('CUSTOMER_EMAIL'));
  const before = await statusWhenLive(customer, id);
  await Promise.all([customer.waitForURL(`**/orders/${id}`), customer.click(`#order-${id} a`)]);
  await live(customer);
  await adminMoves(id, 'paid');
  await customer.waitForSelector('#order-status[data-status="paid"]');
  await customer.goBack();
  const afterBack = await statusWhenLive(customer, id);
  return { before, afterBack };
}

async function doubleClick(session) {
  const customer = await session.open('customer');
  await customer.goto(`${WEB_URL}/login`);
  await session.shoot(customer, 'login');
  await signIn(customer, env('CUSTOMER_EMAIL'));
  await live(customer);
  const posts = [];
  const done = [];
  customer.on('request', (request) => {
    if (request.method() === 'POST' && new URL(request.url()).pathname === '/api/orders') {
      posts.push(request.headers()['idempotency-key'] ?? null);
      done.push(request.response());
    }
  });
  const rows = await customer.$$eval('#orders tbody tr', (all) => all.length);
  await customer.dblclick('#new-order button[type="submit"]');
  await customer.waitForFunction(
    (n) => document.querySelectorAll('#orders tbody tr').length > n, rows);
  await Promise.all(done);  // every POST answered before the test counts the orders
  const rowsAdded = (await customer.$$eval('#orders tbody tr', (all) => all.length)) - rows;
  const message = await customer.$eval('#messages', (region) => region.textContent)
    .catch(() => null);  // pages before issue 13 had no such region
  return { keys: posts, rowsAdded, message };
}

async function orderForm(session) {
  const customer = await session.open('customer');
  await signIn(customer, env('CUSTOMER_EMAIL'));
  await live(customer);
  let posts = 0;
  customer.on('request', (request) => {
    if (request.method() === 'POST' && new URL(request.url()).pathname === '/api/orders') posts += 1;
  });
  await customer.click('#add-line');
  await customer.selectOption('#line-2-product', env('SECOND_PRODUCT_ID'));
  await customer.fill('#line-2-quantity', '2');
  const stock = Number(await customer.getAttribute('#line-1-quantity', 'max'));
  await customer.fill('#line-1-quantity', String(stock + 1));
  await customer.click('#new-order button[type="submit"]');
  await customer.waitForSelector('#line-1-quantity-error');  // next to the field (issue 20)
  const refused = { message: await customer.textContent('#line-1-quantity-error'), posts,
    focused: await customer.evaluate(() => document.activeElement.id),
    banner: await customer.textContent('#messages') };
  await session.shoot(customer, 'customer-order-form-two-lines');
  const rows = await customer.$$eval('#orders tbody tr', (all) => all.length);
  await customer.fill('#line-1-quantity', '1');
  await customer.click('#new-order button[type="submit"]');
  await customer.waitForSelector('#messages .message-success');
  const newRow = await customer.$eval('#orders tbody tr', (row) => Number(row.dataset.orderId));
  return { stock, refused, placed: { posts, orderId: newRow,
    rowsAdded: (await customer.$$eval('#orders tbody tr', (all) => all.length)) - rows,
    message: await customer.textContent('#messages') } };
}

async function openOrderAsAdmin(session) {
  const admin = await session.open('admin');
  await signIn(admin, env('ADMIN_EMAIL'));
  await admin.goto(`${WEB_URL}/orders/${env('ORDER_ID')}`);
  await live(admin);
  return admin;
}

async function staleClick(session) {
  session.allow(/status of 409/);
  const admin = await openOrderAsAdmin(session);
  await admin.evaluate(() => window.Echo.connector.pusher.disconnect());
  await admin.waitForSelector('#live-status[data-view="offline"]');
  await adminMoves(env('ORDER_ID'), 'paid');
  await admin.fill('#notes', 'Checked with the bank');
  await admin.click('#transition-buttons button[value="paid"]');
  await admin.waitForSelector('#messages .message-error');
  await admin.waitForSelector('#order-status[data-status="paid"]');
  await session.shoot(admin, 'admin-order-conflict');
  const shown = {
    message: await admin.textContent('#messages'),
    note: await admin.inputValue('#notes'),
    buttons: await admin.$$eval('#transition-buttons button', (all) => all.map((b) => b.value)),
    reconnectShown: await admin.isVisible('#reconnect'),
  };
  await admin.click('#reconnect');
  await live(admin);
  return { ...shown, afterReconnect: { reconnectShown: await admin.isVisible('#reconnect'),
    words: await admin.textContent('#live-status') } };
}

async function confirmCancel(session) {
  const admin = await openOrderAsAdmin(session);
  let posts = 0;
  admin.on('request', (request) => {
    if (request.method() === 'POST') posts += 1;
  });
  await admin.click('#transition-buttons button[value="cancelled"]');
  await admin.waitForSelector('#confirm-dialog[open]');
  const question = await admin.textContent('#confirm-dialog');
  await session.shoot(admin, 'admin-order-confirm-cancel');
  await admin.click('#confirm-dialog button[value="keep"]');
  await admin.waitForSelector('#confirm-dialog:not([open])', { state: 'attached' });
  const afterKeep = { posts, status: await admin.getAttribute('#order-status', 'data-status'),
    focused: await admin.evaluate(() => document.activeElement.value) };
  await admin.click('#transition-buttons button[value="cancelled"]');
  await admin.click('#confirm-yes');
  await admin.waitForSelector('#order-status[data-status="cancelled"]');
  return { question, afterKeep, posts, message: await admin.textContent('#messages'),
    focused: await admin.evaluate(() => document.activeElement.id) };
}

async function signedOut(session) {
  session.allow(/status of 40[13]/);  // the tab asks whether it is still signed in: 401
  const first = await session.open('customer tab 1');
  await signIn(first, env('CUSTOMER_EMAIL'));
  await live(first);
  const second = await session.tab(first, 'customer tab 2');
  await second.goto(`${WEB_URL}/orders`);  // no presence channel here: only the sign-in names her
  await live(second);
  await Promise.all([first.waitForURL('**/login**'), first.click('.account button[type="submit"]')]);
  const terminate = process.env.TERMINATE_URL;
  if (terminate) {
    const answer = await fetch(terminate, { method: 'POST', body: '{}' });
    if (!answer.ok) throw new Error(`terminate_connections: ${answer.status} ${await answer.text()}`);
  }
  await second.waitForSelector('#signed-out:not([hidden])');
  await session.shoot(second, 'customer-signed-out');
  return {
    banner: await second.textContent('#signed-out'),
    link: await second.getAttribute('#sign-in-again', 'href'),
    view: await second.getAttribute('#live-status', 'data-view'),
    live: await second.getAttribute('#live-status', 'data-subscribed'),
  };
}

// SCENARIO=dashboard (the dashboard's server side from DESK-SERVER): the status tabs count
// live as an order is placed and paid elsewhere; a tab, a search and the pages are links.
const counts = (page) => page.$$eval('[data-count-for]', (all) => Object.fromEntries(
  all.map((node) => [node.dataset.countFor, Number(node.textContent)])));
const statuses = (page) => page.$$eval('#orders tbody td.status', (all) => all.map(
  (cell) => cell.dataset.status));

async function dashboard(session) {
  const admin = await session.open('admin');
  await signIn(admin, env('ADMIN_EMAIL'));
  await live(admin);
  // The orders the test placed just before may still be on their way as events.
  await admin.waitForSelector(`[data-count-for="all"]:text-is("${env('TOTAL')}")`);
  const before = await counts(admin);
  const placed = await fetch(`${WEB_URL}/api/orders`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json',
      Authorization: `Bearer ${env('CUSTOMER_TOKEN')}` },
    body: JSON.stringify({ items: [{ product_id: 1, quantity: 1 }] }),
  });
  const order = (await placed.json()).order;
  await admin.waitForSelector(`#order-${order.id}`);
  // The row comes with the event; the counts follow once the page has re-read them.
  await admin.waitForSelector(`[data-count-for="all"]:text-is("${before.all + 1}")`);
  const afterPlaced = await counts(admin);
  await adminMoves(order.id, 'paid');
  await admin.waitForSelector(`#order-${order.id} td.status[data-status="paid"]`);
  await admin.waitForSelector(`[data-count-for="paid"]:text-is("${before.paid + 1}")`);
  const afterPaid = await counts(admin);
  const pageTotal = Number(await admin.textContent('#page-total'));
  await session.shoot(admin, 'admin-dashboard-filters');

  await Promise.all([admin.waitForURL('**/admin/orders?status=paid**'),
    admin.click('[data-tab="paid"]')]);
  await live(admin);
  const paidTab = { statuses: await statuses(admin),
    current: await admin.getAttribute('[aria-current="page"][data-tab]', 'data-tab') };
  await admin.fill('#order-search', order.order_number);
  await Promise.all([admin.waitForURL('**q=**'), admin.click('.search button[type="submit"]')]);
  await live(admin);
  const searched = await admin.$$eval('#orders tbody tr', (rows) => rows.map((r) => r.id));
  await admin.goto(`${WEB_URL}/admin/orders`);
  await live(admin);
  const firstPage = (await statuses(admin)).length;
  await Promise.all([admin.waitForURL('**page=2**'), admin.click('.pager a[rel="next"]')]);
  await live(admin);
  await session.shoot(admin, 'admin-dashboard-page-2');
  return { orderId: order.id, before, afterPlaced, afterPaid, pageTotal, paidTab, searched, firstPage,
    secondPage: (await statuses(admin)).length,
    caption: await admin.textContent('#orders caption') };
}

const SCENARIOS = {
  dashboard,
  back_forward: backForward, double_click: doubleClick, order_form: orderForm,
  stale_click: staleClick, confirm: confirmCancel, signed_out: signedOut,
};
const scenario = SCENARIOS[env('SCENARIO')];
if (!scenario) throw new Error(`SCENARIO must be one of ${Object.keys(SCENARIOS).join(', ')}`);
runScenario(scenario);
