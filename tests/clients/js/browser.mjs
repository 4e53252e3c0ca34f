// What the browser scenarios share: Debian's headless Chromium through playwright-core, pages
// that record every JavaScript error, sign-in through the login form, and screenshots.
//
// A scenario calls runScenario(async (session) => report): session.open(label) gives a signed-out
// page in a fresh browser context (its own cookies), session.tab(page, label) another page in
// that page's context (same sign-in). session.shoot(page, name) checks the page with axe-core
// and takes a screenshot at desktop width and one at 390 px (name-390.png). The report, with
// the errors, the serious axe violations and the screenshots added, goes to stdout as one JSON
// object; a failed step exits 1 with a message on stderr.
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { createInterface } from 'node:readline';

import { chromium } from 'playwright-core';

const axeSource = createRequire(import.meta.url)('axe-core').source;

export const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`set ${name} in the environment`);
  return value;
};

const STEP_TIMEOUT_MS = 20000;
const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };
// axe-core impacts that fail the suite.
const BLOCKING = new Set(['serious', 'critical']);
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

// Have the test do `name` midway (browser.py's run_scenario_with_steps: stop a server, say)
// and wait until it is done.
let answers = null;
export async function ask(name) {
  answers ??= createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  process.stdout.write(`${JSON.stringify({ ask: name })}\n`);
  const { value } = await answers.next();
  if (value !== 'done') throw new Error(`the test did not do ${name}: ${value}`);
}

// The pages set data-subscribed on #live-status once Echo's private channel is subscribed.
// A page that does not get there says what it shows instead.
export async function live(page) {
  try {
    await page.waitForSelector('#live-status[data-subscribed="true"]');
  } catch (error) {
    const shown = await page.$eval('#live-status', (status) => `${status.textContent} ` +
      `(view ${status.dataset.view}, connection ${status.dataset.state})`).catch(() => 'nothing');
    throw new Error(`${page.url()} did not go live; #live-status shows ${shown}\n${error.message}`);
  }
}

// The next time `page` loads static/`script`, the browser gets the file only once `first()` is
// done, as on a slow network: what the page did meanwhile (its socket connected, events came)
// happened before the script ran.
export async function holdScript(page, script, first) {
  const pattern = `**/static/${script}*`;
  const hold = async (route) => {
    await first();
    await route.continue();
    await page.unroute(pattern, hold);
  };
  await page.route(pattern, hold);
}

// The ids of the orders table's rows, top to bottom.
export const rowIds = (page) => page.$$eval('#orders tbody tr',
  (rows) => rows.map((row) => row.id));

// The queries of the list fetches (GET /api/orders) `page` makes from now on.
export function listFetches(page) {
  const seen = [];
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (url.pathname === '/api/orders' && request.method() === 'GET') seen.push(url.search);
  });
  return seen;
}

// Place an order of `quantity` from the "my orders" form on `page`; the id of its new row (her
// own new row comes from the API's answer: its id names the new order).
export async function placeOrder(page, quantity) {
  const ownRows = await rowIds(page);
  await page.fill('#new-order input[name="quantity"]', String(quantity));
  await page.click('#new-order button[type="submit"]');
  await page.waitForFunction(
    (known) => [...document.querySelectorAll('#orders tbody tr')].some(
      (row) => !known.includes(row.id)),
    ownRows);
  return (await rowIds(page)).find((id) => !ownRows.includes(id));
}

// An admin elsewhere (ADMIN_TOKEN) moves the order, through the JSON API.
export async function adminMoves(orderId, status) {
  const answer = await fetch(`${env('WEB_URL')}/api/orders/${orderId}/transition`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${env('ADMIN_TOKEN')}` },
    body: JSON.stringify({ status }),
  });
  if (!answer.ok) throw new Error(`transition to ${status}: ${answer.status} ${await answer.text()}`);
}

export async function signIn(page, email) {
  await page.goto(`${env('WEB_URL')}/login`);
  await page.fill('input[name="email"]', email);
  await page.fill('input[name="password"]', env('PASSWORD'));
  await Promise.all([page.waitForURL((url) => !url.pathname.startsWith('/login')),
    page.click('button[type="submit"]')]);
}

class Session {
  constructor(browser) {
    this.browser = browser;
    this.errors = [];
    this.screenshots = [];
    this.violations = [];
    this.allowed = [];
  }

  // A console error the scenario causes on purpose (e.g. Chromium logs every 409 answer as
  // "Failed to load resource"), so that it does not count as a JavaScript error.
  allow(pattern) {
    this.allowed.push(pattern);
  }

  watch(page, label) {
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    page.on('pageerror', (error) => {
      this.errors.push({ page: label, kind: 'pageerror', text: String(error) });
    });
    page.on('console', (message) => {
      if (message.type() === 'error'
          && !this.allowed.some((pattern) => pattern.test(message.text()))) {
        this.errors.push({ page: label, kind: 'console', text: message.text(),
          page_url: page.url(), source: message.location().url });
      }
    });
    return page;
  }

  async open(label) {
    const context = await this.browser.newContext({ viewport: DESKTOP });
    return this.watch(await context.newPage(), label);
  }

  async tab(page, label) {
    return this.watch(await page.context().newPage(), label);
  }

  // axe-core, evaluated through the DevTools protocol (the page's CSP forbids injected
  // scripts, and stays on); keeps the serious and critical violations. A page without
  // JavaScript runs no timers, which axe needs: then axe checks a copy of its document.
  async audit(page, name) {
    const scriptless = await page.evaluate(() => matchMedia('(scripting: none)').matches);
    const target = scriptless ? await this.copyOf(page) : page;
    const found = await this.violationsOn(target);
    if (scriptless) await target.context().close();
    for (const violation of found.filter((v) => BLOCKING.has(v.impact))) {
      this.violations.push({ screenshot: name, url: page.url(), ...violation });
    }
  }

  // The document of `page` (its styles, none of its scripts) in a page that runs JavaScript.
  async copyOf(page) {
    const context = await this.browser.newContext({ viewport: page.viewportSize() });
    const copy = await context.newPage();
    await copy.route('**/*', (route) => (route.request().resourceType() === 'script'
      ? route.abort() : route.continue()));
    const html = await page.content();
    await copy.setContent(html.replace('<head>', `<head><base href="${page.url()}">`));
    return copy;
  }

  async violationsOn(page) {
    if (!await page.evaluate(() => typeof window.axe === 'object')) await page.evaluate(axeSource);
    return page.evaluate(async () => (await window.axe.run(document, {
      resultTypes: ['violations'],
    })).violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 5).map((node) => node.target.join(' ')),
    })));
  }

  async shoot(page, name) {
    const viewport = page.viewportSize();
    for (const [size, suffix] of [[DESKTOP, ''], [PHONE, '-390']]) {
      await page.setViewportSize(size);
      await this.audit(page, name + suffix);
      const file = path.join(env('SCREENSHOT_DIR'), `${name}${suffix}.png`);
      await page.screenshot({ path: file, fullPage: true });
      this.screenshots.push(file);
    }
    await page.setViewportSize(viewport);
  }
}

export async function runScenario(scenario) {
  let session;
  try {
    await mkdir(env('SCREENSHOT_DIR'), { recursive: true });
    const browser = await chromium.launch({ executablePath: env('CHROMIUM'), args: CHROMIUM_ARGS });
    session = new Session(browser);
    try {
      const report = await scenario(session);
      process.stdout.write(`${JSON.stringify({
        ...report, errors: session.errors, accessibility: session.violations,
        screenshots: session.screenshots,
      })}\n`);
    } finally {
      await browser.close();
    }
  } catch (error) {
    process.stderr.write(`browser scenario failed: ${error?.stack ?? error}\n` +
      `JavaScript errors so far: ${JSON.stringify(session?.errors ?? [])}\n`);
    process.exit(1);
  }
}
