// The install step on the node refuses to write onto a path the pair
// protects (the root key under any name), before a byte is sent: by the
// path as given, and on the node with links resolved.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureFileInstalled } from '../../src/drivers/services/install.js';
import type { NodeShell } from '../../src/drivers/ssh/pool.js';

const dir = mkdtempSync(join(tmpdir(), 'install-protect-'));
const local = join(dir, 'f');
writeFileSync(local, 'x');
const SHA = '2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881';
const PROTECT = [{ path: '/etc/app/master.key', what: 'the root key (paths.rootKey)' }];

/** A shell that answers the guard with guardExit and records every script it ran. */
function shell(guardExit: number) {
  const ran: string[] = [];
  const s = {
    async exec(_node: string, argv: readonly string[]) {
      const script = argv[2] ?? '';
      ran.push(script);
      if (script.includes('readlink -m'))
        return { exitCode: guardExit, stdout: guardExit === 3 ? argv[5]! : '', stderr: '' };
      return { exitCode: 0, stdout: 'MISSING', stderr: '' };
    },
  } as unknown as NodeShell;
  return { s, ran };
}

test.each(['/etc/app/master.key', '/etc/app/./master.key', '/etc/app/sub/../master.key'])(
  'refuses %s by its path, running nothing on the node',
  async (target) => {
    const { s, ran } = shell(0);
    await expect(
      ensureFileInstalled(
        { shell: s },
        { node: 'a', localPath: local, sha256: SHA, target, protect: PROTECT },
      ),
    ).rejects.toThrow(`refusing to write ${target}: it is the root key (paths.rootKey)`);
    expect(ran).toEqual([]);
  },
);

test('refuses a target the node resolves onto the root key (a link), before sending it', async () => {
  const { s, ran } = shell(3);
  await expect(
    ensureFileInstalled(
      { shell: s },
      {
        node: 'a',
        localPath: local,
        sha256: SHA,
        target: '/etc/app/link.conf',
        protect: PROTECT,
      },
    ),
  ).rejects.toThrow('refusing to write /etc/app/link.conf: it is the root key');
  expect(ran).toHaveLength(1);
});
