// A remote control for real pusher-js and laravel-echo clients in this Node process, driven by
// pytest over stdio (stdio.mjs); the operations are clients.mjs's. Exits when stdin closes.
import Echo from 'laravel-echo';
import Pusher from 'pusher-js';

import { installResume } from '../../../clients/js/src/index.js';
import { createOps } from './clients.mjs';
import { report, serve } from './stdio.mjs';

const { ops, disconnectAll } = createOps({ Echo, Pusher, installResume, report });

serve((command) => {
  if (!Object.hasOwn(ops, command.op)) throw new Error(`unknown op ${command.op}`);
  return ops[command.op](command);
}, disconnectAll);
