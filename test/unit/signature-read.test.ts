// A signature path is read only up to its 64 KiB limit and only when it is a
// regular file: a FIFO or a device is refused without reading it to its end.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSignatureBytes } from '../../src/packages/verify.js';

const dir = mkdtempSync(join(tmpdir(), 'sig-read-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('a FIFO nobody writes is refused at once, not waited on', async () => {
  const fifo = join(dir, 'p.sig');
  execFileSync('mkfifo', [fifo]);
  await expect(readSignatureBytes(fifo)).rejects.toThrow('is not a regular file');
});

test('a device is refused without reading it', async () => {
  await expect(readSignatureBytes('/dev/zero')).rejects.toThrow('is not a regular file');
});

test('a big regular file is read only to one byte past the limit', async () => {
  const big = join(dir, 'big.sig');
  writeFileSync(big, Buffer.alloc(5 * 1024 * 1024, 0x41));
  expect((await readSignatureBytes(big)).length).toBe(64 * 1024 + 1);
});
