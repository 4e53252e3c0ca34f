// @resound/resume: history channels for pusher-js and Laravel Echo on Resound. A client that
// reconnects asks for the events it missed, gets each exactly once and in order, and is told
// per channel whether that worked (`resumed`) or it must reload (`failed`).
//
// pusher-js keeps only `event`, `channel`, `data` and `user_id` of a frame, so the serials must
// be read before it sees the frame. The one public place for that is its runtime's WebSocket
// factory, `Pusher.Runtime.createWebSocket(url)` (the web, node and worker builds): installResume
// wraps it, so every socket pusher-js opens goes through a ResumeSocket, which passes frames on
// unchanged until a tracked client claims it (by its socket id, once pusher-js is connected).
import { DEFAULTS, Recovery } from './recovery.js';

export { DEFAULTS, Recovery };

const hooks = new WeakMap(); // Pusher.Runtime -> its ResumeHook

function parse(text) {
  if (typeof text !== 'string') return null;
  try {
    return JSON.parse(text);
  } catch {
    return null; // pusher-js reports it as a MessageParseError; not ours to judge
  }
}

// The socket pusher-js gets: the runtime's own socket behind the four handlers, send and close
// that pusher-js uses. Received frames go through the tracking client, if one claimed it.
class ResumeSocket {
  constructor(socket, hook) {
    this.socket = socket;
    this.client = null;
    this.socketId = null; // from pusher:connection_established
    this.onopen = undefined;
    this.onerror = undefined;
    this.onclose = undefined;
    this.onmessage = undefined;
    socket.onopen = (event) => this.onopen?.(event);
    socket.onerror = (event) => this.onerror?.(event);
    socket.onclose = (event) => {
      hook.forget(this);
      this.client?.closed(this);
      this.onclose?.(event);
    };
    socket.onmessage = (event) => {
      const frame = parse(event.data);
      if (this.client) {
        this.client.received(this, frame, event);
        return;
      }
      if (frame?.event === 'pusher:connection_established') hook.established(this, frame);
      this.onmessage?.(event);
    };
  }

  get readyState() {
    return this.socket.readyState;
  }

  get url() {
    return this.socket.url;
  }

  send(data) {
    this.socket.send(data);
    if (this.client && typeof data === 'string' && data.includes('pusher:unsubscribe')) {
      this.client.recovery.sent(parse(data));
    }
  }

  close(...args) {
    this.socket.close(...args);
  }

  // Hand `event` (a received MessageEvent, or one held back earlier) to pusher-js.
  deliver(event) {
    this.onmessage?.(event);
  }
}

// One pusher-js client's history: its Recovery, the socket it is on, the app's callbacks.
class ResumeClient {
  constructor(callbacks, options) {
    this.callbacks = callbacks;
    this.recovery = new Recovery(options);
    this.socket = null;
    this.timer = null;
  }

  attach(socket) {
    if (this.socket && this.socket !== socket) this.socket.client = null;
    this.socket = socket;
    socket.client = this;
    this.recovery.reset();
    this.pump();
  }

  closed(socket) {
    if (socket !== this.socket) return;
    socket.client = null;
    this.socket = null;
    this.recovery.reset();
    this.pump();
  }

  received(socket, frame, event) {
    const items = frame ? this.recovery.received(frame, event) : [event];
    for (const item of items) socket.deliver(item);
    this.pump();
  }

  // Send what is due, deliver what timed out, arm the timer, then make the app's callbacks.
  pump() {
    clearTimeout(this.timer);
    this.timer = null;
    const now = performance.now(); // monotonic: pacing and timeouts survive clock changes
    const { send, deliver, wakeAt } = this.recovery.due(now);
    for (const frame of send) this.socket?.socket.send(JSON.stringify(frame));
    for (const item of deliver) this.socket?.deliver(item);
    if (wakeAt !== null && this.socket) {
      this.timer = setTimeout(() => this.pump(), Math.max(0, wakeAt - now));
      this.timer.unref?.(); // Node: a pending resume alone keeps no process alive
    }
    for (const { kind, channel, ...detail } of this.recovery.takeReports()) {
      this.callbacks[kind]?.(channel, detail);
    }
  }
}

class ResumeHook {
  constructor(runtime) {
    this.bySocketId = new Map(); // socket id -> ResumeSocket not yet claimed
    const create = runtime.createWebSocket;
    runtime.createWebSocket = (...args) => new ResumeSocket(create.apply(runtime, args), this);
  }

  established(socket, frame) {
    const data = typeof frame.data === 'string' ? parse(frame.data) : frame.data;
    if (typeof data?.socket_id === 'string') {
      socket.socketId = data.socket_id;
      this.bySocketId.set(data.socket_id, socket);
    }
  }

  forget(socket) {
    if (this.bySocketId.get(socket.socketId) === socket) this.bySocketId.delete(socket.socketId);
  }

  // Track `pusher` (a pusher-js client: `new Pusher(...)` or Echo's `echo.connector.pusher`).
  // `callbacks.resumed(channel, {after, latest, epoch, replayed})`: the channel caught up, every
  // missed event was delivered. `callbacks.failed(channel, {reason, latest, epoch})`: events may
  // be missing, reload the channel's state. `options`: see DEFAULTS. Returns
  // `{position(channel)}`: the app's {serial, epoch} on a history channel, or null.
  track(pusher, callbacks = {}, options = {}) {
    const client = new ResumeClient(callbacks, options);
    const claim = () => {
      const socket = this.bySocketId.get(pusher.connection.socket_id);
      if (!socket) {
        console.warn('@resound/resume: this connection did not come through installResume, ' +
          'so its channels are not resumed; call installResume(Pusher) before new Pusher(...) ' +
          'or new Echo(...), and keep pusher-js on WebSocket transports (ws, wss)');
        return;
      }
      this.bySocketId.delete(socket.socketId);
      client.attach(socket);
    };
    pusher.connection.bind('connected', claim);
    if (pusher.connection.state === 'connected') claim();
    return { position: (channel) => client.recovery.position(channel) };
  }
}

// Wrap `Pusher.Runtime.createWebSocket` (once per runtime) and return the hook whose `track`
// follows a client. Call it before `new Pusher(...)` or `new Echo(...)`: the first socket is
// opened inside that constructor.
export function installResume(Pusher) {
  const runtime = Pusher?.Runtime;
  if (typeof runtime?.createWebSocket !== 'function') {
    throw new TypeError('installResume needs the pusher-js class (import Pusher from ' +
      "'pusher-js', or window.Pusher); it has no Runtime.createWebSocket");
  }
  if (!hooks.has(runtime)) hooks.set(runtime, new ResumeHook(runtime));
  return hooks.get(runtime);
}
