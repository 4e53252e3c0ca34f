// The pure core, fed frames as the server sends them (history-protocol.md); items are the
// frames' serials, so a test reads what the app got as a list of numbers.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Recovery } from '../src/recovery.js';

const CHANNEL = 'private-orders.7';
const subscribed = (serial, epoch = 'e1', channel = CHANNEL) => ({
  event: 'pusher_internal:subscription_succeeded', channel, data: '{}', serial, epoch,
});
const event = (serial, epoch = 'e1', channel = CHANNEL) => ({
  event: 'order.shipped', channel, data: `{"n":${serial}}`, serial, epoch,
});
const answer = (name, fields, channel = CHANNEL) => ({
  event: `resound:resume_${name}`, channel, data: JSON.stringify(fields),
});

// Feed frames; return the items delivered (an event's serial, another frame's event name).
const itemOf = (frame) => (frame.event === 'order.shipped' ? frame.serial : frame.event);
function feed(recovery, ...frames) {
  return frames.flatMap((frame) => recovery.received(frame, itemOf(frame)));
}

// A client at serial `serial` of CHANNEL that lost its socket and subscribed again at `latest`.
function reconnected(serial, latest, epoch = 'e1') {
  const recovery = new Recovery();
  feed(recovery, subscribed(0));
  for (let n = 1; n <= serial; n += 1) feed(recovery, event(n));
  recovery.reset();
  feed(recovery, subscribed(latest, epoch));
  return recovery;
}

describe('live events', () => {
  it('delivers events in serial order and drops one it has seen', () => {
    const recovery = new Recovery();
    assert.deepEqual(feed(recovery, subscribed(3), event(3), event(4), event(5), event(4)),
      ['pusher_internal:subscription_succeeded', 4, 5]);
    assert.deepEqual(recovery.position(CHANNEL), { serial: 5, epoch: 'e1' });
    assert.deepEqual(recovery.due(0).send, []); // a repeat is no gap: nothing to ask for
  });

  it('passes frames of other channels and frames without a serial unchanged', () => {
    const recovery = new Recovery();
    feed(recovery, subscribed(0));
    const member = { event: 'pusher_internal:member_added', channel: CHANNEL, data: '{}' };
    const plain = { event: 'order.shipped', channel: 'private-other', data: '{}', serial: 1 };
    assert.deepEqual(recovery.received(member, 'member'), ['member']);
    assert.deepEqual(recovery.received(plain, 'plain'), ['plain']);
    assert.deepEqual(recovery.received({ event: 'pusher:pong', data: '{}' }, 'pong'), ['pong']);
    assert.equal(recovery.position('private-other'), null);
  });

  it('holds events above a gap, asks for the gap, and delivers it in order', () => {
    const recovery = new Recovery();
    feed(recovery, subscribed(0), event(1));
    assert.deepEqual(feed(recovery, event(4), event(5)), []);
    assert.deepEqual(recovery.due(0).send, [{
      event: 'resound:resume', data: { channel: CHANNEL, after: 1, epoch: 'e1' },
    }]);
    assert.deepEqual(feed(recovery, event(2), event(3), event(4), event(5)), [2, 3, 4, 5]);
    assert.deepEqual(feed(recovery, answer('succeeded', { latest: 5, epoch: 'e1' })), []);
    assert.deepEqual(recovery.takeReports(), [{
      kind: 'resumed', channel: CHANNEL, after: 1, latest: 5, epoch: 'e1', replayed: 4,
    }]);
    assert.deepEqual(feed(recovery, event(6)), [6]);
  });

  it('fails a channel whose events come under a new epoch, and follows the new one', () => {
    const recovery = new Recovery();
    feed(recovery, subscribed(0), event(1), event(2));
    assert.deepEqual(feed(recovery, event(1, 'e2'), event(2, 'e2')), [1, 2]);
    assert.deepEqual(recovery.takeReports().map((r) => [r.kind, r.latest, r.epoch]),
      [['failed', 1, 'e2']]);
  });

  it('takes the epoch of the first event on a channel subscribed before any (epoch "")', () => {
    const recovery = new Recovery();
    assert.deepEqual(feed(recovery, subscribed(0, ''), event(1, 'e5'), event(2, 'e5')), [
      'pusher_internal:subscription_succeeded', 1, 2]);
    assert.deepEqual(recovery.takeReports(), []);
    assert.deepEqual(recovery.position(CHANNEL), { serial: 2, epoch: 'e5' });
  });

  it('fails instead of holding more than maxHeld events', () => {
    const recovery = new Recovery({ maxHeld: 2 });
    feed(recovery, subscribed(0));
    assert.deepEqual(feed(recovery, event(3), event(5)), []);
    assert.deepEqual(feed(recovery, event(6)), [3, 5, 6]);
    assert.equal(recovery.takeReports()[0].kind, 'failed');
    assert.deepEqual(feed(recovery, event(7), event(6)), [7]);
  });
});

describe('after a reconnect', () => {
  it('reports resumed at once when nothing was missed, and sends nothing', () => {
    const recovery = reconnected(2, 2);
    assert.deepEqual(recovery.due(0).send, []);
    assert.deepEqual(recovery.takeReports(), [{
      kind: 'resumed', channel: CHANNEL, after: 2, latest: 2, epoch: 'e1', replayed: 0,
    }]);
  });

  it('resumes after its serial and gets each missed event once, in order', () => {
    const recovery = reconnected(2, 4);
    assert.deepEqual(recovery.due(0).send[0].data, { channel: CHANNEL, after: 2, epoch: 'e1' });
    // Live events 5 and 6 overtake the replay; the replay repeats 5.
    const got = feed(recovery, event(5), event(3), event(6), event(4), event(5),
      answer('succeeded', { latest: 5, epoch: 'e1' }), event(6), event(7));
    assert.deepEqual(got, [3, 4, 5, 6, 7]);
    assert.deepEqual(recovery.takeReports().map((r) => [r.kind, r.replayed]), [['resumed', 3]]);
  });

  it('resumes a channel it subscribed to before its first event, without an epoch', () => {
    const recovery = new Recovery();
    feed(recovery, subscribed(0, ''));
    recovery.reset();
    feed(recovery, subscribed(3, 'e5'));
    assert.deepEqual(recovery.due(0).send[0].data, { channel: CHANNEL, after: 0, epoch: 'e5' });
    assert.deepEqual(feed(recovery, event(1, 'e5'), event(2, 'e5'), event(3, 'e5'),
      answer('succeeded', { latest: 3, epoch: 'e5' })), [1, 2, 3]);
    assert.deepEqual(recovery.takeReports().map((r) => [r.kind, r.epoch]), [['resumed', 'e5']]);
    assert.deepEqual(recovery.position(CHANNEL), { serial: 3, epoch: 'e5' });
  });

  it('reports failed, without asking, when the epoch changed or the server is behind', () => {
    for (const [latest, epoch] of [[9, 'e2'], [1, 'e1']]) {
      const recovery = reconnected(2, latest, epoch);
      assert.deepEqual(recovery.due(0).send, []);
      const [report] = recovery.takeReports();
      assert.deepEqual([report.kind, report.latest, report.epoch], ['failed', latest, epoch]);
      assert.deepEqual(feed(recovery, event(latest + 1, epoch)), [latest + 1]);
    }
  });

  it('reports failed with the server\'s reason, and delivers what came after its latest', () => {
    const recovery = reconnected(2, 300);
    recovery.due(0);
    const got = feed(recovery, event(302), event(301),
      answer('failed', { reason: 'serial 3 is no longer in the window', latest: 301, epoch: 'e1' }));
    assert.deepEqual(got, [302]);
    assert.deepEqual(recovery.takeReports(), [{
      kind: 'failed', channel: CHANNEL, reason: 'serial 3 is no longer in the window',
      latest: 301, epoch: 'e1',
    }]);
    assert.deepEqual(feed(recovery, event(302), event(303)), [303]);
  });

  it('fails a resume the server does not answer in time, and delivers what it held', () => {
    const recovery = new Recovery({ answerTimeoutMs: 1000 });
    feed(recovery, subscribed(0), event(1), event(3));
    assert.equal(recovery.due(50).wakeAt, 1050);
    assert.deepEqual(recovery.due(1049).deliver, []);
    assert.deepEqual(recovery.due(1050).deliver, [3]);
    assert.equal(recovery.takeReports()[0].kind, 'failed');
    assert.equal(recovery.due(2000).wakeAt, null);
  });

  it('ignores an answer to a resume it did not send or that a new socket voided', () => {
    const recovery = reconnected(2, 4);
    assert.deepEqual(feed(recovery, answer('failed', { reason: 'x', latest: 4 })), []);
    recovery.due(0);
    recovery.reset();
    assert.deepEqual(feed(recovery, answer('succeeded', { latest: 4 })), []);
    assert.deepEqual(recovery.takeReports(), []);
  });

  it('paces resumes to resumesPerSecond and says when to send the rest', () => {
    const recovery = new Recovery({ resumesPerSecond: 2 });
    const names = ['private-a', 'private-b', 'private-c'];
    for (const name of names) feed(recovery, subscribed(1, 'e1', name));
    recovery.reset();
    for (const name of names) feed(recovery, subscribed(2, 'e1', name));
    const first = recovery.due(0);
    assert.deepEqual(first.send.map((f) => f.data.channel), ['private-a', 'private-b']);
    assert.equal(first.wakeAt, 500);
    assert.deepEqual(recovery.due(499).send, []);
    assert.deepEqual(recovery.due(500).send.map((f) => f.data.channel), ['private-c']);
  });

  it('forgets a channel the app unsubscribes from', () => {
    const recovery = reconnected(2, 4);
    recovery.sent({ event: 'pusher:unsubscribe', data: { channel: CHANNEL } });
    assert.deepEqual(recovery.due(0).send, []);
    assert.equal(recovery.position(CHANNEL), null);
    assert.deepEqual(feed(recovery, subscribed(4)), ['pusher_internal:subscription_succeeded']);
    assert.deepEqual(recovery.takeReports(), []);
  });
});
