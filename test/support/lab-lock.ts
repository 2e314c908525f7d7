// Labs are per name, and jest may run two test files that use the same lab
// name at once: a lock file holding the owner's pid makes them take turns.
// A dead owner's lock is taken over.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits for the lab name; resolves with the function that releases it. */
export async function lockLab(name: string): Promise<() => void> {
  const path = `/tmp/pairshift-lab-${name}.test-lock`;
  for (;;) {
    try {
      writeFileSync(path, String(process.pid), { flag: 'wx' });
      return () => rmSync(path, { force: true });
    } catch {
      const pid = Number(readFileSync(path, 'utf8'));
      let alive = false;
      try {
        process.kill(pid, 0);
        alive = pid !== process.pid;
      } catch {}
      if (!alive) rmSync(path, { force: true });
      else await sleep(1000);
    }
  }
}
