/** Waiting for a writable stream that said "not now" (write returned false): until it drains, or closes (then for good). */
import type { EventEmitter } from 'node:events';

export function drainedOrClosed(stream: EventEmitter): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}
