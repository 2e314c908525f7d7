// The prober in a worker thread, for a process that has other work to do
// (the operator). Measured in the lab (docs/prober.md, "The operator's
// probe"): on the operator's own event loop, SSH, package hashing and the
// store delayed the probe's timers and answers by hundreds of ms at a time,
// and each delay was counted as outage, so the operator reported 2.8 to
// 9.4 s where clients saw about 1 s. A worker has its own event loop, so the
// schedule and the timeouts no longer wait for the operator's work.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { FromWorker, ToWorker } from './probe-worker.js';
import { type ProbeReport, type Prober, type ProberOptions, startProber } from './prober.js';

/**
 * Starts the prober in a worker thread. When the compiled worker cannot be
 * found (the TypeScript sources run without a build) it runs in this thread,
 * and says so through onFallback.
 */
export async function startProberOffThread(
  opts: ProberOptions,
  onFallback: (why: string) => void = () => {},
): Promise<Prober> {
  const entry = workerEntry(import.meta.url);
  if (!entry) {
    onFallback('the compiled probe worker was not found (npm run build); probing in this thread');
    return startProber(opts);
  }
  const worker = new Worker(entry, { workerData: { ...opts } });
  const started = Date.now();
  // Kept for stop(): a worker that died mid-run must fail the stop, not the process.
  let gone: string | undefined;
  worker.on('error', (err) => {
    gone = `crashed: ${err.message}`;
  });
  worker.on('exit', (code) => {
    gone ??= `exited with code ${code}`;
  });
  let next = nextMessage(worker);
  const first = await next;
  if (first.type !== 'started') {
    await worker.terminate();
    throw new Error(
      `the probe worker did not start: ${first.type === 'error' ? first.message : first.type}`,
    );
  }
  let stopping: Promise<ProbeReport> | undefined;
  const stop = async (): Promise<ProbeReport> => {
    if (gone) throw new Error(`the probe worker ${gone} before it was stopped`);
    next = nextMessage(worker);
    worker.postMessage({ type: 'stop' } satisfies ToWorker);
    try {
      const m = await next;
      if (m.type !== 'report') {
        throw new Error(`the probe worker failed: ${m.type === 'error' ? m.message : m.type}`);
      }
      return m.report;
    } finally {
      await worker.terminate();
    }
  };
  return {
    runId: first.runId,
    snapshot: () => ({ elapsedMs: Date.now() - started }),
    stop: () => {
      stopping ??= stop();
      return stopping;
    },
  };
}

/** The next message from the worker; its crash or exit is an error message too. */
function nextMessage(worker: Worker): Promise<FromWorker> {
  return new Promise((resolve) => {
    const done = (m: FromWorker) => {
      worker.off('message', done);
      worker.off('error', failed);
      worker.off('exit', exited);
      resolve(m);
    };
    const failed = (err: Error) => done({ type: 'error', message: err.message });
    const exited = (code: number) => done({ type: 'error', message: `exited with code ${code}` });
    worker.on('message', done);
    worker.on('error', failed);
    worker.on('exit', exited);
  });
}

/**
 * probe-worker.js beside this module (the build in dist/); from the
 * TypeScript sources (jest), the built one in dist/ of the same checkout.
 */
export function workerEntry(moduleUrl: string): string | undefined {
  const beside = fileURLToPath(new URL('./probe-worker.js', moduleUrl));
  if (existsSync(beside)) return beside;
  const fromSources = /^(.*)[/\\]src[/\\]prober[/\\][^/\\]+\.ts$/.exec(fileURLToPath(moduleUrl));
  const built = fromSources
    ? join(fromSources[1]!, 'dist', 'prober', 'probe-worker.js')
    : undefined;
  return built && existsSync(built) ? built : undefined;
}
