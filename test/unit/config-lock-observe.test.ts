// The immutable lock's observation runs `find ... -exec lsattr` on the node.
// A file that vanishes between the two (the sync job or the app replacing a
// file: seen once in CI as "lsattr: No such file or directory while trying to
// stat /etc/app/driver-test.conf") is no longer there to lock and must not
// fail the observation; any other complaint must. Run here with the real sh
// and find, and a stand-in lsattr on PATH that plays the vanished file.
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { observeConfigLock } from '../../src/drivers/config-sync/lock.js';
import { DriverError } from '../../src/drivers/errors.js';
import type { NodeShell } from '../../src/drivers/ssh/pool.js';

let root: string;
let bin: string;

/** Runs argv locally with the stand-in lsattr first on PATH; fails as the SSH pool does. */
const local: NodeShell = {
  exec: (node, argv) =>
    new Promise((resolve, reject) => {
      execFile(
        argv[0]!,
        argv.slice(1),
        { env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } },
        (err, stdout, stderr) => {
          const exitCode = err ? ((err as { code?: number }).code ?? 1) : 0;
          if (exitCode !== 0)
            reject(
              new DriverError('command failed', {
                kind: 'transient',
                node,
                exitCode,
                stderrTail: stderr,
              }),
            );
          else resolve({ exitCode, signal: undefined, stdout, stderr, durationMs: 0 });
        },
      );
    }),
};

function fakeLsattr(behaviour: 'vanished' | 'broken'): void {
  const complaint =
    behaviour === 'vanished'
      ? 'lsattr: No such file or directory while trying to stat $f'
      : 'lsattr: Inappropriate ioctl for device While reading flags on $f';
  writeFileSync(
    join(bin, 'lsattr'),
    `#!/bin/sh\nshift\n[ "$1" = "--" ] && shift\nfor f in "$@"; do case "$f" in *gone*) echo "${complaint}" >&2;; *) echo "----i---------e------- $f";; esac; done\nexit 1\n`,
  );
  chmodSync(join(bin, 'lsattr'), 0o755);
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'pairshift-lock-'));
  bin = join(root, 'bin');
  mkdirSync(bin);
  mkdirSync(join(root, 'etc-app'));
  writeFileSync(join(root, 'etc-app', 'app.properties'), 'x=1\n');
  writeFileSync(join(root, 'etc-app', 'gone.conf'), 'soon gone\n');
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('observing the immutable config lock', () => {
  it('ignores a file that vanished while it was being read', async () => {
    fakeLsattr('vanished');
    await expect(
      observeConfigLock({ shell: local }, 'a', join(root, 'etc-app'), 'immutable'),
    ).resolves.toBe('yes');
  });

  it('still fails on any other complaint, naming it', async () => {
    fakeLsattr('broken');
    await expect(
      observeConfigLock({ shell: local }, 'a', join(root, 'etc-app'), 'immutable'),
    ).rejects.toThrow(/Inappropriate ioctl/);
  });

  it('fails when the folder itself is missing', async () => {
    fakeLsattr('vanished');
    await expect(
      observeConfigLock({ shell: local }, 'a', join(root, 'nope'), 'immutable'),
    ).rejects.toThrow(/not a folder/);
  });
});
