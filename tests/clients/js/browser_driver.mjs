// driver.mjs's twin for headless Chromium (Debian's, $CHROMIUM): each client is a page of its
// own, in its own browser context, that loads the browser builds of pusher-js and laravel-echo
// from node_modules and @resound/resume from clients/js, and runs clients.mjs's operations.
// Same line protocol (stdio.mjs); a page's JavaScript errors come as 'page_error' events.
//
// This driver serves the pages itself, from 127.0.0.1 (Chromium lets only a local page open
// sockets to the local broadcaster). Absolute auth endpoints in the options (the test's own,
// another origin) become same-origin paths the driver forwards, so pusher-js's XHR needs no CORS.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { report, serve } from './stdio.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const FILES = {
  '/vendor/pusher.js': 'node_modules/pusher-js/dist/web/pusher.js',
  '/vendor/echo.js': 'node_modules/laravel-echo/dist/echo.iife.js',
  '/js/clients.mjs': 'tests/clients/js/clients.mjs',
};
const RESUME_DIR = 'clients/js/src';
const PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>client</title>
<link rel="icon" href="data:,">
<script src="/vendor/pusher.js"></script><script src="/vendor/echo.js"></script>
<script type="module" src="/page.mjs"></script></head><body></body></html>`;
const PAGE_MODULE = `import { installResume } from '/resume/index.js';
import { createOps } from '/js/clients.mjs';
const { ops } = createOps({ Echo: window.Echo.default, Pusher: window.Pusher, installResume,
  report: (...args) => window.report(...args) });
window.runOp = (command) => ops[command.op](command);`;
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM, args: CHROMIUM_ARGS,
});
const pages = new Map();

// POST /forward?to=URL: the request, sent on to URL (a local auth endpoint) and answered back.
async function forward(request, body, response) {
  const target = new URL(new URL(request.url, 'http://x').searchParams.get('to'));
  if (target.hostname !== '127.0.0.1') throw new Error(`${target} is not local`);
  const headers = Object.fromEntries(Object.entries(request.headers).filter(
    ([name]) => !['host', 'connection', 'content-length', 'origin', 'referer'].includes(name)));
  const answer = await fetch(target, { method: request.method, headers, body });
  response.writeHead(answer.status, { 'Content-Type': answer.headers.get('content-type') });
  response.end(Buffer.from(await answer.arrayBuffer()));
}

async function answer(request, response) {
  const { pathname } = new URL(request.url, 'http://x');
  const chunks = [];
  for await (const chunk of request) chunks.push(chunk);
  const text = (body, type) => {
    response.writeHead(200, { 'Content-Type': type });
    response.end(body);
  };
  if (pathname === '/forward') return forward(request, Buffer.concat(chunks), response);
  if (pathname === '/') return text(PAGE, 'text/html');
  if (pathname === '/page.mjs') return text(PAGE_MODULE, 'text/javascript');
  const file = FILES[pathname] ?? (pathname.startsWith('/resume/')
    ? path.join(RESUME_DIR, path.basename(pathname)) : null);
  if (file) return text(await readFile(path.join(ROOT, file), 'utf8'), 'text/javascript');
  response.writeHead(404);
  return response.end(`${pathname} is not served here`);
}

const server = createServer((request, response) => answer(request, response).catch((error) => {
  response.writeHead(500);
  response.end(String(error));
}));
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const ORIGIN = `http://127.0.0.1:${server.address().port}`;

const forwarded = (url) => (url?.startsWith('http') ? `/forward?to=${encodeURIComponent(url)}`
  : url);

// The options with the test's absolute auth endpoints made same-origin.
function sameOrigin(options) {
  const moved = { ...options, authEndpoint: forwarded(options?.authEndpoint) };
  if (options?.userAuthentication) {
    moved.userAuthentication = { ...options.userAuthentication,
      endpoint: forwarded(options.userAuthentication.endpoint) };
  }
  return moved;
}

async function openPage(name) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('pageerror', (error) => report(name, 'page_error', { data: String(error) }));
  page.on('console', (message) => {
    if (message.type() === 'error') report(name, 'page_error', { data: message.text() });
  });
  await page.exposeFunction('report', report);
  await page.goto(`${ORIGIN}/`);
  await page.waitForFunction(() => typeof window.runOp === 'function');
  pages.set(name, page);
  return page;
}

serve(async (command) => {
  let page = pages.get(command.client);
  if (command.op === 'pusher' || command.op === 'echo') {
    if (page) throw new Error(`there is a client named ${command.client} already`);
    page = await openPage(command.client);
    const options = sameOrigin(command.options);
    return page.evaluate((c) => window.runOp(c), { ...command, options });
  }
  if (!page) throw new Error(`no client named ${command.client}; create it first`);
  return page.evaluate((c) => window.runOp(c), command);
}, async () => {
  await browser.close();
  server.close();
});
