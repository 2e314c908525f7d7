// The prober's body when it runs in a worker thread (off-thread.ts starts
// it). Its own event loop keeps the probe schedule and the timeouts on time
// however busy the thread that started it is.
import { parentPort, workerData } from 'node:worker_threads';
import { type Prober, type ProberOptions, startProber } from './prober.js';

export type ToWorker = { type: 'stop' };
export type FromWorker =
  | { type: 'started'; runId: string }
  | { type: 'report'; report: import('./prober.js').ProbeReport }
  | { type: 'error'; message: string };

const port = parentPort;
if (port) {
  const send = (m: FromWorker) => port.postMessage(m);
  let prober: Prober | undefined;
  startProber(workerData as ProberOptions).then(
    (p) => {
      prober = p;
      send({ type: 'started', runId: p.runId });
    },
    (err: unknown) => send({ type: 'error', message: messageOf(err) }),
  );
  port.on('message', (m: ToWorker) => {
    if (m.type !== 'stop' || !prober) return;
    prober.stop().then(
      (report) => send({ type: 'report', report }),
      (err: unknown) => send({ type: 'error', message: messageOf(err) }),
    );
  });
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
