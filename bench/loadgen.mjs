// Load generator for the Resound benchmarks: holds thousands of Pusher-protocol connections in one
// Node process (the `ws` client), triggers events through the signed HTTP API, and measures.
// Clients live in worker threads (one per core by default), so reading 1,000 sockets or opening
// 2,000 is not one thread's serial job; subscriber threads share delivery counts and the latency
// histogram through shared memory.
//
//   node bench/loadgen.mjs '<json spec>'
//
// The spec names the scenario and the server (wsUrls, httpUrl, appId, key, secret) plus the
// scenario's sizes; with several wsUrls (cluster nodes), client i connects to wsUrls[i % n].
// It writes one JSON object per line on stdout:
//   {"phase": "start"} / {"phase": "end"}   the measured window (the harness samples the server)
//   {"phase": "hold"}                        idle: waits for one line on stdin before closing
//   {"result": {...}}                        the scenario's figures, then the process exits
// Every loop is bounded in count and time; a watchdog ends the process if anything hangs.

import crypto from 'node:crypto';
import http from 'node:http';
import os from 'node:os';
import readline from 'node:readline';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import WebSocket from 'ws';

const spec = isMainThread ? JSON.parse(process.argv[2]) : workerData.spec;
const WATCHDOG_S = spec.watchdogSeconds ?? 300;
const SEQ_MARK = 'seq:';
const SEQ_DIGITS = 9;
const HIST_RES_US = 10; // latency histogram resolution
const HIST_MAX_US = 20_000_000; // latencies above this land in the last bucket (max stays exact)
const HIST_LENGTH = HIST_MAX_US / HIST_RES_US + 1;

if (isMainThread) {
  setTimeout(() => fail(`watchdog: still running after ${WATCHDOG_S} s`), WATCHDOG_S * 1000)
    .unref();
  process.on('unhandledRejection', (err) => fail(err.message || String(err)));
}

function emit(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function fail(message) {
  if (!isMainThread) throw new Error(message); // the main thread reports it and exits
  process.stderr.write(`loadgen: ${message}\n`);
  process.exit(1);
}

// Milliseconds on a clock every thread shares (each thread has its own performance.timeOrigin).
const nowMs = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const hmacHex = (message) =>
  crypto.createHmac('sha256', spec.secret).update(message).digest('hex');

// This process's CPU (every thread) from now until the returned function is called.
function cpuTracker() {
  const cpu0 = process.cpuUsage();
  const t0 = nowMs();
  return () => {
    const cpu = process.cpuUsage(cpu0);
    return { loadgen_cpu_pct: (100 * (cpu.user + cpu.system)) / 1000 / (nowMs() - t0) };
  };
}

// --- Pusher connections ----------------------------------------------------------------------

// One client connection. Pusher frames are parsed only until the client is subscribed; after
// that, benchmark events are recognized by their "seq:" marker without JSON parsing.
class Client {
  constructor(onEvent) {
    this.ws = null;
    this.socketId = null;
    this.onEvent = onEvent; // (seq, recvMs) for benchmark events
    this.waiters = new Map(); // event name -> resolve
    this.onPusherEvent = null; // (msg) for presence bookkeeping
    this.closing = false; // true once we close it ourselves
  }

  // Connects to node `index` modulo the number of nodes.
  connect(timeoutMs, index = 0) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('connect timed out')), timeoutMs);
      const url = spec.wsUrls[index % spec.wsUrls.length];
      this.ws = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true });
      this.ws.on('message', (data) => this.handle(data));
      this.ws.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      this.ws.on('close', (code) => {
        clearTimeout(timer);
        if (!this.socketId) reject(new Error(`closed with ${code} before connection_established`));
        else if (!this.closing) serverCloses.push(code);
      });
      this.waiters.set('pusher:connection_established', (msg) => {
        clearTimeout(timer);
        this.socketId = JSON.parse(msg.data).socket_id;
        resolve(this);
      });
    });
  }

  handle(data) {
    const at = data.indexOf(SEQ_MARK);
    if (at >= 0) {
      this.onEvent(readSeq(data, at + SEQ_MARK.length), nowMs());
      return;
    }
    const msg = JSON.parse(data);
    if (msg.event === 'pusher:ping') {
      this.send({ event: 'pusher:pong', data: {} });
      return;
    }
    const waiter = this.waiters.get(msg.event);
    if (waiter) {
      this.waiters.delete(msg.event);
      waiter(msg);
    }
    if (this.onPusherEvent) this.onPusherEvent(msg);
  }

  // Stops WebSocket parsing and only counts benchmark events in the raw bytes: a subscriber then
  // costs the load generator one callback per read, however many frames the read holds, so the
  // generator stays cheaper per delivery than any server it measures. Benchmark frames are small
  // unmasked text frames holding exactly one "seq:<digits>" marker each.
  countRaw() {
    const socket = this.ws._socket;
    socket.removeAllListeners('data');
    let carry = null;
    socket.on('data', (chunk) => {
      const buf = carry ? Buffer.concat([carry, chunk]) : chunk;
      const at = nowMs();
      let i = buf.indexOf(SEQ_MARK);
      while (i >= 0 && i + MARK_LENGTH <= buf.length) {
        this.onEvent(readSeq(buf, i + SEQ_MARK.length), at);
        i = buf.indexOf(SEQ_MARK, i + MARK_LENGTH);
      }
      carry = i >= 0 ? buf.subarray(i) : markPrefixAtEnd(buf);
    });
  }

  send(obj) {
    this.ws.send(JSON.stringify(obj));
  }

  // Resolves on the next frame named `event`; rejects on pusher:error or timeout.
  expect(event, timeoutMs) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${event} within ${timeoutMs} ms`)),
        timeoutMs);
      this.waiters.set('pusher:error', (msg) => {
        clearTimeout(timer);
        reject(new Error(`pusher:error ${JSON.stringify(msg.data)}`));
      });
      this.waiters.set(event, (msg) => {
        clearTimeout(timer);
        this.waiters.delete('pusher:error');
        resolve(msg);
      });
    });
  }

  // Sends pusher:subscribe, signed for private and presence channels.
  sendSubscribe(channel, channelData) {
    const data = { channel };
    if (channel.startsWith('private-') || channel.startsWith('presence-')) {
      const signed = channelData === undefined
        ? `${this.socketId}:${channel}` : `${this.socketId}:${channel}:${channelData}`;
      data.auth = `${spec.key}:${hmacHex(signed)}`;
      if (channelData !== undefined) data.channel_data = channelData;
    }
    this.send({ event: 'pusher:subscribe', data });
  }

  subscribe(channel, timeoutMs) {
    const done = this.expect('pusher_internal:subscription_succeeded', timeoutMs);
    this.sendSubscribe(channel);
    return done;
  }

  close() {
    this.closing = true;
    if (this.ws) this.ws.terminate();
  }
}

const MARK_LENGTH = SEQ_MARK.length + SEQ_DIGITS;

function readSeq(buf, start) {
  let seq = 0;
  for (let j = start; j < start + SEQ_DIGITS; j += 1) seq = seq * 10 + buf[j] - 48;
  return seq;
}

const MARK_BYTES = Buffer.from(SEQ_MARK, 'latin1');

// The tail of `buf` when it is the start of a marker cut by the read ("s", "se", "seq"), else null.
function markPrefixAtEnd(buf) {
  for (let k = Math.min(MARK_BYTES.length - 1, buf.length); k > 0; k -= 1) {
    const from = buf.length - k;
    let j = 0;
    while (j < k && buf[from + j] === MARK_BYTES[j]) j += 1;
    if (j === k) return buf.subarray(from);
  }
  return null;
}

const noEvent = () => {};
const noEvents = () => noEvent;
const serverCloses = []; // close codes of connections the server ended during a scenario

// Runs task(i) for i in [0, count) with at most `limit` running at once; throws the first error.
async function pool(count, limit, task) {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
}

// Connects `count` clients, each subscribed to subscribeTo(i) if that names a channel, at most
// `concurrency` at once; client i hands its benchmark events to onEventFor(i); `raw` switches
// them to counting (countRaw); `durations` receives each client's connect-to-subscribed time in ms.
// Client i is the (first + i)-th overall, which picks its node.
async function connectMany(count, onEventFor, subscribeTo,
  { raw = false, durations = null, concurrency = spec.connectConcurrency ?? 100, first = 0 } = {}) {
  const clients = new Array(count);
  await pool(count, concurrency, async (i) => {
    const started = nowMs();
    const client = new Client(onEventFor(i));
    clients[i] = client;
    await client.connect(15000, first + i);
    const channel = subscribeTo(i);
    if (channel) await client.subscribe(channel, 15000);
    if (raw) client.countRaw();
    if (durations) durations.push(nowMs() - started);
  });
  return clients;
}

function closeAll(clients) {
  for (const client of clients) if (client) client.close();
}

// --- The signed HTTP trigger API -------------------------------------------------------------

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

// The URL of a request to `path` with `extra` query parameters, signed as the Pusher SDKs sign.
function signedUrl(method, path, extra) {
  const params = {
    ...extra,
    auth_key: spec.key,
    auth_timestamp: String(Math.floor(Date.now() / 1000)),
    auth_version: '1.0',
  };
  const query = Object.keys(params).sort().map((k) => `${k}=${params[k]}`).join('&');
  const signature = hmacHex(`${method}\n${path}\n${query}`);
  return `${spec.httpUrl}${path}?${query}&auth_signature=${signature}`;
}

function trigger(channel, name, data) {
  const body = JSON.stringify({ name, channel, data });
  const url = signedUrl('POST', `/apps/${spec.appId}/events`,
    { body_md5: crypto.createHash('md5').update(body).digest('hex') });
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: 'POST', agent, headers: { 'content-type': 'application/json' }, timeout: 10000,
    }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve()
        : reject(new Error(`trigger answered HTTP ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error('trigger timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

const PAD = 'x'.repeat(spec.padBytes ?? 64);
const eventData = (seq) => `${SEQ_MARK}${String(seq).padStart(SEQ_DIGITS, '0')}|${PAD}`;

const HISTORY_TAIL = 5; // the last events of a run read back from the channel's history

// The number of the benchmark event whose data is `data`, or null when it is none of them.
function seqOf(data) {
  if (typeof data !== 'string' || !data.startsWith(SEQ_MARK)) return null;
  const seq = readSeq(Buffer.from(data, 'latin1'), SEQ_MARK.length);
  return data === eventData(seq) ? seq : null;
}

// What the channel's history holds after `events` events were published on it (GET
// channels/{name}/events, signed): the HTTP status and, when 200, the latest and oldest serials
// kept, and the serials of the last HISTORY_TAIL listed with the events they hold (`seqs`, by
// their number, null for data that is no event sent; concurrent triggers may take their
// serials in another order than their numbers).
function readHistory(channel, events) {
  const after = Math.max(0, events - HISTORY_TAIL);
  const url = signedUrl('GET', `/apps/${spec.appId}/channels/${channel}/events`,
    { after: String(after), limit: String(HISTORY_TAIL) });
  return new Promise((resolve, reject) => {
    http.get(url, { agent, timeout: 10000 }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () => {
        if (res.statusCode !== 200) {
          resolve({ status: res.statusCode });
          return;
        }
        const answer = JSON.parse(Buffer.concat(chunks).toString());
        resolve({
          status: 200,
          latest: answer.latest,
          oldest: answer.oldest,
          serials: answer.events.map((e) => e.serial),
          seqs: answer.events.map((e) => seqOf(e.data)),
        });
      });
    }).on('timeout', function onTimeout() { this.destroy(new Error('history read timed out')); })
      .on('error', reject);
  });
}

// --- Worker threads --------------------------------------------------------------------------

const threadCount = (count) =>
  Math.max(1, Math.min(spec.threads ?? os.availableParallelism(), count));

// Resolves with the payload of the next message from `worker` that carries `key`.
function once(worker, key) {
  return new Promise((resolve) => {
    const listener = (message) => {
      if (message[key] !== undefined) {
        worker.off('message', listener);
        resolve(message[key]);
      }
    };
    worker.on('message', listener);
  });
}

// Threads running `role` on `count` clients between them; thread i gets clients
// [offset, offset + count) in workerData, plus `data`.
class Threads {
  constructor(role, count, data = {}) {
    this.finishing = false;
    const threads = threadCount(count);
    let offset = 0;
    this.workers = Array.from({ length: threads }, (_, i) => {
      const share = Math.floor(count / threads) + (i < count % threads ? 1 : 0);
      const worker = new Worker(new URL(import.meta.url),
        { workerData: { ...data, spec, role, offset, count: share } });
      offset += share;
      worker.on('error', (err) => fail(`${role} thread: ${err.message || err}`));
      worker.on('exit', (code) => {
        if (code !== 0 && !this.finishing) fail(`${role} thread exited with ${code}`);
      });
      return worker;
    });
  }

  ready() {
    return Promise.all(this.workers.map((worker) => once(worker, 'ready')));
  }

  // Sends `command` to every thread; resolves with each thread's `key` payload.
  tell(command, key) {
    return Promise.all(this.workers.map((worker) => {
      const answer = once(worker, key);
      worker.postMessage(command);
      return answer;
    }));
  }

  // Every thread closes its clients; their reports, with the server's close codes collected.
  async finish() {
    this.finishing = true;
    const reports = await this.tell('finish', 'report');
    for (const report of reports) serverCloses.push(...report.closes);
    return reports;
  }
}

// In a thread: the next command from the main thread.
const nextMessage = () => new Promise((resolve) => parentPort.once('message', resolve));

// In a thread: on 'finish', close `clients` and send `report()`.
function closeOnFinish(clients, report) {
  parentPort.once('message', () => {
    closeAll(clients);
    parentPort.postMessage({ report: { ...report(), closes: serverCloses } });
    parentPort.close();
  });
}

// --- Delivery bookkeeping (shared by the trigger thread and the subscriber threads) ----------

// Every subscriber keeps which events it has seen (one bit per seq), so a delivery counts only
// the first time one subscriber reads one event: a second copy is a duplicate, never a stand-in
// for a copy another subscriber missed. An event is complete when every subscriber has it.
class Deliveries {
  static shared(subscribers, maxEvents) {
    return {
      subscribers,
      maxEvents,
      sentAt: new SharedArrayBuffer(8 * (maxEvents + 1)), // seq -> ms, written before triggering
      received: new SharedArrayBuffer(4 * (maxEvents + 1)), // seq -> subscribers reached
      hist: new SharedArrayBuffer(4 * HIST_LENGTH), // latency buckets
      counts: new SharedArrayBuffer(4 * 2), // [first copies, duplicates and unknown seqs]
    };
  }

  constructor(shared) {
    this.subscribers = shared.subscribers;
    this.maxEvents = shared.maxEvents;
    this.sentAt = new Float64Array(shared.sentAt);
    this.received = new Int32Array(shared.received);
    this.hist = new Uint32Array(shared.hist);
    this.counts = new Int32Array(shared.counts);
    this.maxUs = 0; // this thread's slowest delivery
    this.onComplete = null; // (seq) when this thread delivers an event's last frame
  }

  sent(seq, at) {
    this.sentAt[seq] = at;
  }

  // The event handler of one subscriber, with its own record of the events it has seen.
  subscriber() {
    const seen = new Uint8Array((this.maxEvents >> 3) + 1);
    return (seq, at) => {
      const byte = seq >> 3;
      const bit = 1 << (seq & 7);
      if (seq < 1 || seq > this.maxEvents || (seen[byte] & bit) !== 0) {
        Atomics.add(this.counts, 1, 1);
        return;
      }
      seen[byte] |= bit;
      this.record(seq, at);
    };
  }

  record(seq, at) {
    const us = (at - this.sentAt[seq]) * 1000;
    Atomics.add(this.hist, Math.min(Math.floor(us / HIST_RES_US), HIST_LENGTH - 1), 1);
    Atomics.add(this.counts, 0, 1);
    if (us > this.maxUs) this.maxUs = us;
    if (Atomics.add(this.received, seq, 1) + 1 === this.subscribers) this.onComplete(seq);
  }

  // Deliveries that reached a subscriber for the first time.
  total() {
    return Atomics.load(this.counts, 0);
  }

  // Second copies of an event to one subscriber, and events that were never sent.
  duplicates() {
    return Atomics.load(this.counts, 1);
  }

  // The p-th percentile over `expected` deliveries; one that never arrived ranks above every
  // latency, so null when the percentile falls among the misses.
  percentileMs(p, expected) {
    const rank = Math.ceil((p / 100) * expected);
    let seen = 0;
    for (let i = 0; rank > 0 && i < HIST_LENGTH; i += 1) {
      seen += Atomics.load(this.hist, i);
      if (seen >= rank) return ((i + 0.5) * HIST_RES_US) / 1000;
    }
    return null;
  }
}

// Subscribers on `CHANNEL` spread over threads; the main thread's view of delivery progress.
class SubscriberThreads extends Threads {
  constructor(deliveries, shared, count) {
    super('subscribers', count, { shared });
    this.deliveries = deliveries;
    this.outstanding = new Set(); // seqs sent and not yet delivered to every subscriber
    this.wake = null;
    for (const worker of this.workers) {
      worker.on('message', (message) => {
        if (message.completed !== undefined) {
          this.outstanding.delete(message.completed);
          if (this.wake) this.wake();
        }
      });
    }
  }

  sent(seq) {
    this.deliveries.sent(seq, nowMs());
    this.outstanding.add(seq);
  }

  // Resolves when an event completes or after `ms`.
  nap(ms) {
    return new Promise((resolve) => {
      this.wake = resolve;
      setTimeout(resolve, ms);
    });
  }

  // Forgets events older than `maxAgeMs` that never reached everyone; returns how many.
  expire(maxAgeMs) {
    const now = nowMs();
    let expired = 0;
    for (const seq of this.outstanding) {
      if (now - this.deliveries.sentAt[seq] > maxAgeMs) {
        this.outstanding.delete(seq);
        expired += 1;
      }
    }
    return expired;
  }

  // Waits until every sent event reached every subscriber, or until `timeoutMs`; how many did not.
  async drain(timeoutMs) {
    const deadline = nowMs() + timeoutMs;
    while (this.outstanding.size > 0 && nowMs() < deadline) await this.nap(20);
    return this.outstanding.size;
  }

  // Closes every subscriber; the slowest delivery over all threads.
  async finish() {
    const reports = await super.finish();
    return { maxUs: Math.max(...reports.map((r) => r.maxUs)) };
  }
}

// A subscriber thread: connect, subscribe, count raw deliveries, report when told to finish.
async function subscriberThread() {
  const deliveries = new Deliveries(workerData.shared);
  deliveries.onComplete = (seq) => parentPort.postMessage({ completed: seq });
  const clients = await connectMany(workerData.count, () => deliveries.subscriber(),
    () => CHANNEL, { raw: true, first: workerData.offset });
  parentPort.postMessage({ ready: true });
  closeOnFinish(clients, () => ({ maxUs: deliveries.maxUs }));
}

async function startSubscribers(maxEvents) {
  const shared = Deliveries.shared(spec.subscribers, maxEvents);
  const deliveries = new Deliveries(shared);
  const threads = new SubscriberThreads(deliveries, shared, spec.subscribers);
  await threads.ready();
  return { deliveries, threads };
}

// What `events` events to every subscriber came to: the deliveries that arrived (first copies),
// those that never did, the duplicates, and the latencies, where a missing delivery is a miss.
function deliveryFigures(deliveries, events, incompleteEvents, maxUs) {
  const expected = events * spec.subscribers;
  const missing = expected - deliveries.total();
  return {
    events,
    expected_deliveries: expected,
    deliveries: deliveries.total(),
    missing_deliveries: missing,
    duplicate_deliveries: deliveries.duplicates(),
    incomplete_events: incompleteEvents,
    latency_p50_ms: deliveries.percentileMs(50, expected),
    latency_p99_ms: deliveries.percentileMs(99, expected),
    latency_max_ms: missing > 0 ? null : maxUs / 1000,
  };
}

// --- Scenarios -------------------------------------------------------------------------------

const CHANNEL = spec.channel ?? 'bench'; // fanout and latency: the channel they publish on

// As fast as the server takes them: `inflight` trigger requests outstanding, each answered once
// the server has queued its frames. A cap on events not yet delivered to every subscriber
// (`backlog`) keeps socket buffers bounded should the load generator fall behind.
async function fanout() {
  const { deliveries, threads } = await startSubscribers(spec.maxEvents);
  emit({ phase: 'start' });
  const cpu = cpuTracker();
  const t0 = nowMs();
  const stopAt = t0 + spec.seconds * 1000;
  let seq = 0;
  let expired = 0;
  let requests = 0;
  let triggerError = null;
  while (nowMs() < stopAt && seq < spec.maxEvents && !triggerError) {
    while (requests < spec.inflight && threads.outstanding.size < spec.backlog
      && seq < spec.maxEvents) {
      seq += 1;
      requests += 1;
      threads.sent(seq);
      trigger(CHANNEL, 'bench', eventData(seq))
        .catch((err) => { triggerError = err; })
        .finally(() => { requests -= 1; if (threads.wake) threads.wake(); });
    }
    await threads.nap(50);
    expired += threads.expire(5000);
  }
  const lost = (await threads.drain(5000)) + expired;
  const drainedAt = nowMs();
  const delivered = deliveries.total();
  const loadgen = cpu();
  emit({ phase: 'end' });
  const { maxUs } = await threads.finish();
  if (triggerError) fail(triggerError.message);
  const history = spec.history ? { history: await readHistory(CHANNEL, seq) } : {};
  return {
    ...history,
    triggers_in_flight: spec.inflight,
    subscriber_threads: threads.workers.length,
    // First copies over the whole window, from the first trigger until every event reached every
    // subscriber (or the drain gave up): waiting for a lost delivery is part of the time.
    deliveries_per_s: (delivered * 1000) / (drainedAt - t0),
    window_s: (drainedAt - t0) / 1000,
    ...deliveryFigures(deliveries, seq, lost, maxUs),
    ...loadgen,
  };
}

// Open loop at a fixed rate: every 1/rate s one event, whatever the server is doing.
async function latency() {
  const count = Math.round(spec.rate * spec.seconds);
  const { deliveries, threads } = await startSubscribers(count);
  emit({ phase: 'start' });
  const cpu = cpuTracker();
  const t0 = nowMs();
  const triggers = [];
  for (let seq = 1; seq <= count; seq += 1) {
    const due = t0 + ((seq - 1) * 1000) / spec.rate;
    const wait = due - nowMs();
    if (wait > 0) await sleep(wait);
    threads.sent(seq);
    triggers.push(trigger(CHANNEL, 'bench', eventData(seq)));
  }
  await Promise.all(triggers);
  const lost = await threads.drain(5000);
  const loadgen = cpu();
  emit({ phase: 'end' });
  const { maxUs } = await threads.finish();
  return { subscriber_threads: threads.workers.length,
    ...deliveryFigures(deliveries, count, lost, maxUs), ...loadgen };
}

// Connections each subscribed to their own private channel, then held idle for the harness.
async function idle() {
  const clients = await connectMany(spec.connections, noEvents, (i) => `private-idle-${i}`);
  emit({ phase: 'hold' });
  const lines = readline.createInterface({ input: process.stdin });
  await new Promise((resolve) => lines.once('line', resolve));
  lines.close();
  closeAll(clients);
  return { connections: clients.length };
}

// A handshake thread: on 'go', connect and subscribe its share; report when each was done.
async function handshakeThread() {
  const { offset, count } = workerData;
  parentPort.postMessage({ ready: true });
  await nextMessage();
  const durations = [];
  const clients = await connectMany(count, noEvents, (i) => `private-hs-${offset + i}`,
    { durations, concurrency: workerData.concurrency, first: offset });
  parentPort.postMessage({ connected: { doneAt: nowMs(), durations } });
  closeOnFinish(clients, () => ({}));
}

// Connect + private subscribe as fast as the server takes them: `connectConcurrency` at once,
// spread over the threads.
async function handshakes() {
  const perThread = Math.ceil(spec.connectConcurrency / threadCount(spec.connections));
  const threads = new Threads('handshakes', spec.connections, { concurrency: perThread });
  await threads.ready();
  emit({ phase: 'start' });
  const cpu = cpuTracker();
  const t0 = nowMs();
  const connected = await threads.tell('go', 'connected');
  const elapsedMs = Math.max(...connected.map((c) => c.doneAt)) - t0;
  const loadgen = cpu();
  emit({ phase: 'end' });
  await threads.finish();
  const durations = connected.flatMap((c) => c.durations);
  return { connections: durations.length, threads: threads.workers.length,
    connections_per_s: (durations.length * 1000) / elapsedMs,
    ...percentiles('handshake', durations), ...loadgen };
}

// `${name}_p50_ms`, `_p99_ms` and `_max_ms` of `durations` (ms, every one of them measured).
function percentiles(name, durations) {
  const sorted = [...durations].sort((a, b) => a - b);
  const at = (p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
  return { [`${name}_p50_ms`]: at(50), [`${name}_p99_ms`]: at(99), [`${name}_max_ms`]: at(100) };
}

const PRESENCE_CHANNEL = 'presence-bench';
const userId = (i) => `u${i}`;

// A presence thread holds members [offset, offset + count) of spec.members. Every client keeps
// its own member list from subscription_succeeded, member_added and member_removed. On 'join'
// all subscribe; on 'leave' those past the first half unsubscribe; after each, the thread
// reports when every list it holds equals the membership.
async function presenceThread() {
  const { offset, count } = workerData;
  const channel = PRESENCE_CHANNEL;
  const clients = await connectMany(count, noEvents, () => null, { first: offset });
  const lists = clients.map(() => null);
  clients.forEach((client, i) => {
    client.onPusherEvent = (msg) => {
      if (msg.event === 'pusher:error' || msg.event === 'pusher:subscription_error') {
        fail(`member ${offset + i} was refused: ${msg.event} ${JSON.stringify(msg.data)}`);
      }
      if (msg.channel !== channel) return;
      if (msg.event === 'pusher_internal:subscription_succeeded') {
        lists[i] = new Set(JSON.parse(msg.data).presence.ids.map(String));
      } else if (msg.event === 'pusher_internal:member_added' && lists[i]) {
        lists[i].add(String(JSON.parse(msg.data).user_id));
      } else if (msg.event === 'pusher_internal:member_removed' && lists[i]) {
        lists[i].delete(String(JSON.parse(msg.data).user_id));
      }
    };
  });
  const untilConsistent = async (mine, expected) => {
    const deadline = nowMs() + spec.timeoutSeconds * 1000;
    const matches = (i) => lists[i] !== null && lists[i].size === expected.size
      && [...expected].every((id) => lists[i].has(id));
    while (nowMs() < deadline) {
      // A cheap size check first; the full comparison only once sizes agree.
      if (mine.every((i) => lists[i] !== null && lists[i].size === expected.size)
        && mine.every(matches)) return nowMs();
      await sleep(2);
    }
    return fail(`presence lists not consistent within ${spec.timeoutSeconds} s`);
  };
  const stayCount = Math.ceil(spec.members / 2);
  const mine = clients.map((_, i) => i);
  const staying = mine.filter((i) => offset + i < stayCount);
  const range = (n) => Array.from({ length: n }, (_, i) => userId(i));
  parentPort.postMessage({ ready: true });

  await nextMessage();
  clients.forEach((client, i) => {
    const member = offset + i;
    client.sendSubscribe(channel,
      JSON.stringify({ user_id: userId(member), user_info: { n: member } }));
  });
  parentPort.postMessage({ joined: await untilConsistent(mine, new Set(range(spec.members))) });

  await nextMessage();
  for (const i of mine) {
    if (offset + i >= stayCount) {
      clients[i].send({ event: 'pusher:unsubscribe', data: { channel } });
    }
  }
  parentPort.postMessage({ left: await untilConsistent(staying, new Set(range(stayCount))) });
  closeOnFinish(clients, () => ({}));
}

// A presence-subscribe thread: its members connect up front (to their nodes); on 'go' each joins
// PRESENCE_CHANNEL with signed channel_data, `concurrency` at once, timed from sending
// pusher:subscribe to subscription_succeeded. Reports the times, the largest roster any join
// carried, and how many rosters left out their own member.
async function presenceSubscribeThread() {
  const { offset, count } = workerData;
  const clients = await connectMany(count, noEvents, () => null, { first: offset });
  parentPort.postMessage({ ready: true });
  await nextMessage();
  const durations = [];
  let largest = 0;
  let withoutSelf = 0;
  await pool(count, workerData.concurrency, async (i) => {
    const member = userId(offset + i);
    const done = clients[i].expect('pusher_internal:subscription_succeeded', 15000);
    const started = nowMs();
    clients[i].sendSubscribe(PRESENCE_CHANNEL,
      JSON.stringify({ user_id: member, user_info: { n: offset + i } }));
    const { presence } = JSON.parse((await done).data);
    durations.push(nowMs() - started);
    largest = Math.max(largest, presence.count);
    if (!presence.ids.map(String).includes(member)) withoutSelf += 1;
  });
  parentPort.postMessage({ subscribed: { durations, largest, withoutSelf } });
  closeOnFinish(clients, () => ({}));
}

// Every member joins one presence channel (members stay): subscribe-to-succeeded times. The run
// fails unless each roster holds its own member and the last join saw every member, so a
// roster that covers one node only cannot pass.
async function presenceSubscribe() {
  const perThread = Math.ceil(spec.concurrency / threadCount(spec.members));
  const threads = new Threads('presenceSubscribe', spec.members, { concurrency: perThread });
  await threads.ready();
  emit({ phase: 'start' });
  const cpu = cpuTracker();
  const subscribed = await threads.tell('go', 'subscribed');
  const loadgen = cpu();
  emit({ phase: 'end' });
  await threads.finish();
  const largest = Math.max(...subscribed.map((s) => s.largest));
  const withoutSelf = subscribed.reduce((sum, s) => sum + s.withoutSelf, 0);
  if (largest !== spec.members) {
    fail(`the largest roster in subscription_succeeded had ${largest} of ${spec.members} `
      + 'members: the last join did not see every member');
  }
  if (withoutSelf > 0) {
    fail(`${withoutSelf} subscription_succeeded rosters left out their own member`);
  }
  return { members: spec.members, nodes: spec.wsUrls.length, threads: threads.workers.length,
    ...percentiles('subscribe', subscribed.flatMap((s) => s.durations)), ...loadgen };
}

// Members join one presence channel, then half leave: how long until every list is right.
async function presence() {
  const threads = new Threads('presence', spec.members);
  await threads.ready();
  emit({ phase: 'start' });
  const cpu = cpuTracker();
  const joinT0 = nowMs();
  const joinMs = Math.max(...await threads.tell('join', 'joined')) - joinT0;
  const leaveT0 = nowMs();
  const leaveMs = Math.max(...await threads.tell('leave', 'left')) - leaveT0;
  const loadgen = cpu();
  emit({ phase: 'end' });
  await threads.finish();
  return { members: spec.members, threads: threads.workers.length, join_ms: joinMs,
    leave_ms: leaveMs, consistent_ms: joinMs + leaveMs, ...loadgen };
}

const scenarios = { fanout, latency, idle, handshakes, presence, presenceSubscribe };
const run = scenarios[spec.scenario];
if (!isMainThread) {
  const roles = { subscribers: subscriberThread, handshakes: handshakeThread,
    presence: presenceThread, presenceSubscribe: presenceSubscribeThread };
  await roles[workerData.role]();
} else {
  if (!run) fail(`unknown scenario ${spec.scenario}; expected one of ${Object.keys(scenarios)}`);
  try {
    const result = await run();
    emit({ result: { ...result, server_closes: serverCloses.length,
      server_close_codes: [...new Set(serverCloses)] } });
    agent.destroy();
    process.exit(0);
  } catch (err) {
    fail(err.message || String(err));
  }
}
