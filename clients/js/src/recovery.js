// The pure core of @resound/resume: what one pusher-js client knows about its history channels.
//
// It does no I/O and keeps no clock: the adapter (index.js) feeds it every frame the socket
// receives (`received`) and sends (`sent`), tells it when the socket changes (`reset`), asks it
// what to send and deliver (`due(now)`) and reads the callbacks to make (`takeReports`). Times
// are milliseconds from any clock the caller likes. Items are opaque to the core: it hands back
// the ones the app must get, in the order it must get them.

export const RESUME = 'resound:resume';
export const RESUME_SUCCEEDED = 'resound:resume_succeeded';
export const RESUME_FAILED = 'resound:resume_failed';
const SUBSCRIBED = 'pusher_internal:subscription_succeeded';
const UNSUBSCRIBE = 'pusher:unsubscribe';

export const DEFAULTS = Object.freeze({
  // The server allows 10 client events per second per socket, resumes included; keep half free.
  resumesPerSecond: 5,
  // A resume without an answer in this time fails (the app reloads), so no event waits forever.
  answerTimeoutMs: 10000,
  // Events held back behind a gap, per channel; past it the channel fails instead.
  maxHeld: 1000,
});

const isSerial = (value) => Number.isSafeInteger(value) && value >= 0;

// The server names a channel's epoch at its first publication ("" before it), so an empty
// epoch goes with any other.
const sameSequence = (epoch, other) => !epoch || !other || epoch === other;

// The `data` of a resound:resume_* frame: an object, or the JSON of one.
function answerOf(frame) {
  if (typeof frame.data !== 'string') return frame.data ?? {};
  try {
    return JSON.parse(frame.data) ?? {};
  } catch {
    return {};
  }
}

class ChannelState {
  constructor(serial, epoch) {
    this.serial = serial; // the last serial the app got (or its position at subscription)
    this.epoch = epoch;
    this.resume = null; // {after, sentAt (null until sent)} while a resume is open
    this.held = new Map(); // serial -> item, events above a gap, waiting for it to fill
  }

  // The held items that now follow on without a gap, in order; advances `serial`.
  takeContiguous() {
    const items = [];
    while (this.held.has(this.serial + 1)) {
      this.serial += 1;
      items.push(this.held.get(this.serial));
      this.held.delete(this.serial);
    }
    return items;
  }

  // Every held item above `serial`, in serial order (the rest are dropped); `serial` ends at
  // the highest one delivered.
  takeAllAbove(serial) {
    const items = [];
    this.serial = serial;
    for (const held of [...this.held.keys()].sort((a, b) => a - b)) {
      if (held > this.serial) {
        items.push(this.held.get(held));
        this.serial = held;
      }
    }
    this.held.clear();
    return items;
  }
}

export class Recovery {
  constructor(options = {}) {
    this.options = { ...DEFAULTS, ...options };
    this.channels = new Map();
    this.waiting = []; // channel names whose resume waits for a token to be sent
    this.tokens = this.options.resumesPerSecond;
    this.refilledAt = null;
    this.reports = [];
  }

  // Where the app is on `channel`: {serial, epoch}, or null if it is not a history channel
  // this client is subscribed to.
  position(channel) {
    const state = this.channels.get(channel);
    return state ? { serial: state.serial, epoch: state.epoch } : null;
  }

  // Call when the socket closes or a new one takes over: resumes in flight are void and held
  // events are dropped (the next resume brings them again); positions are kept.
  reset() {
    for (const state of this.channels.values()) {
      state.resume = null;
      state.held.clear();
    }
    this.waiting = [];
  }

  // Call with each frame the client sends (parsed): an unsubscribe forgets the channel.
  sent(frame) {
    if (frame?.event !== UNSUBSCRIBE) return;
    const channel = frame.data?.channel;
    this.channels.delete(channel);
    this.waiting = this.waiting.filter((name) => name !== channel);
  }

  // Call with each frame the socket receives (parsed) and its item; returns the items the app
  // gets now, in order (none for a duplicate, an event held behind a gap, or a resume answer).
  // Then call `due`, which may have requests to send.
  received(frame, item) {
    const channel = frame?.channel;
    const state = typeof channel === 'string' ? this.channels.get(channel) : undefined;
    if (frame?.event === SUBSCRIBED) return this.subscribed(channel, state, frame, item);
    if (frame?.event === RESUME_SUCCEEDED || frame?.event === RESUME_FAILED) {
      if (state?.resume?.sentAt != null) return this.answered(channel, state, frame);
      return [];
    }
    if (!state || !isSerial(frame.serial)) return [item];
    return this.event(channel, state, frame, item);
  }

  subscribed(channel, state, frame, item) {
    const { serial, epoch } = frame;
    if (!isSerial(serial) || typeof epoch !== 'string') {
      this.channels.delete(channel); // not (or no longer) a history channel
      return [item];
    }
    if (!state) {
      this.channels.set(channel, new ChannelState(serial, epoch));
      return [item];
    }
    // Subscribed again on a new socket: catch up from where the app is.
    state.resume = null;
    state.held.clear();
    if (!sameSequence(epoch, state.epoch)) {
      this.fail(channel, state, `the channel's history restarted (epoch ${epoch}, was ` +
        `${state.epoch})`, serial, epoch);
    } else if (serial < state.serial) {
      this.fail(channel, state, `the channel's latest serial ${serial} is below the last one ` +
        `seen, ${state.serial}`, serial, epoch);
    } else if (serial === state.serial) {
      state.epoch ||= epoch;
      this.report('resumed', channel, { after: serial, latest: serial, epoch, replayed: 0 });
    } else {
      state.epoch ||= epoch;
      this.ask(channel, state);
    }
    return [item];
  }

  event(channel, state, frame, item) {
    const { serial } = frame;
    if (typeof frame.epoch === 'string' && !sameSequence(frame.epoch, state.epoch)) {
      state.resume = null;
      state.held.clear();
      this.fail(channel, state, `the channel's history restarted (epoch ${frame.epoch}, was ` +
        `${state.epoch})`, serial, frame.epoch);
      return [item];
    }
    if (typeof frame.epoch === 'string') state.epoch ||= frame.epoch;
    if (serial <= state.serial || state.held.has(serial)) return []; // seen already
    if (serial === state.serial + 1) {
      state.serial = serial;
      return [item, ...state.takeContiguous()];
    }
    if (state.held.size >= this.options.maxHeld) {
      state.held.set(serial, item);
      state.resume = null;
      const items = state.takeAllAbove(state.serial);
      this.fail(channel, state, `more than ${this.options.maxHeld} events waited for a gap ` +
        'to fill', state.serial, state.epoch);
      return items;
    }
    state.held.set(serial, item);
    if (!state.resume) this.ask(channel, state); // a gap without a reconnect: fetch it
    return [];
  }

  answered(channel, state, frame) {
    const answer = answerOf(frame);
    const latest = isSerial(answer.latest) ? answer.latest : state.serial;
    const epoch = typeof answer.epoch === 'string' ? answer.epoch : state.epoch;
    const { after } = state.resume;
    state.resume = null;
    if (frame.event === RESUME_FAILED || state.serial < latest) {
      const reason = frame.event === RESUME_FAILED
        ? String(answer.reason ?? 'the server could not resume')
        : `the replay ended at serial ${state.serial}, before the latest, ${latest}`;
      // Held events belong to the epoch the client had; under a new one they mean nothing.
      const sameEpoch = sameSequence(epoch, state.epoch);
      this.fail(channel, state, reason, latest, epoch);
      if (!sameEpoch) state.held.clear();
      return state.takeAllAbove(latest);
    }
    state.epoch ||= epoch;
    this.report('resumed', channel, { after, latest, epoch, replayed: latest - after });
    if (state.held.size) this.ask(channel, state); // still a gap above the replay
    return [];
  }

  // Catch `channel` up from its serial: queue a resume request for `due` to send.
  ask(channel, state) {
    state.resume = { after: state.serial, sentAt: null };
    this.waiting.push(channel);
  }

  // The app must reload `channel`: report it and carry on from `serial` under `epoch`.
  fail(channel, state, reason, serial, epoch) {
    state.serial = serial;
    state.epoch = epoch;
    this.report('failed', channel, { reason, latest: serial, epoch });
  }

  report(kind, channel, detail) {
    this.reports.push({ kind, channel, ...detail });
  }

  // The callbacks to make, in order ({kind: 'resumed' | 'failed', channel, ...}); empties them.
  takeReports() {
    const reports = this.reports;
    this.reports = [];
    return reports;
  }

  // Call after any input, and again at `wakeAt`: the resume frames to send now (paced), the
  // items to deliver now (of resumes that timed out) and when to call again (null: only after
  // the next input).
  due(now) {
    const { resumesPerSecond: rate, answerTimeoutMs } = this.options;
    if (this.refilledAt !== null) {
      this.tokens = Math.min(rate, this.tokens + ((now - this.refilledAt) * rate) / 1000);
    }
    this.refilledAt = now;
    const send = [];
    while (this.waiting.length && this.tokens >= 1) {
      const channel = this.waiting.shift();
      const state = this.channels.get(channel);
      if (!state?.resume || state.resume.sentAt !== null) continue;
      this.tokens -= 1;
      state.resume.sentAt = now;
      const data = { channel, after: state.resume.after };
      if (state.epoch) data.epoch = state.epoch;
      send.push({ event: RESUME, data });
    }
    const deliver = [];
    let wakeAt = this.waiting.length ? now + ((1 - this.tokens) * 1000) / rate : null;
    for (const [channel, state] of this.channels) {
      if (state.resume?.sentAt == null) continue;
      const deadline = state.resume.sentAt + answerTimeoutMs;
      if (deadline <= now) {
        state.resume = null;
        deliver.push(...state.takeAllAbove(state.serial));
        this.fail(channel, state, `no answer to ${RESUME} within ${answerTimeoutMs} ms`,
          state.serial, state.epoch);
      } else if (wakeAt === null || deadline < wakeAt) {
        wakeAt = deadline;
      }
    }
    return { send, deliver, wakeAt };
  }
}
