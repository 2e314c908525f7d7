import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { createLogger, upgradeLogger } from '../../src/log/logger.js';
import { REDACTED, redact, SecretRegistry } from '../../src/log/redact.js';

const ROOT_KEY = Buffer.from('9f8e7d6c5b4a39281706f5e4d3c2b1a0-root-key-bytes', 'utf8');
const TOKEN = 'tok_live_4c1d2e9a77b0';
const PASSWORD = 'S3cr3t-pa55';

function collect(stream: PassThrough): () => string {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return () => Buffer.concat(chunks).toString('utf8');
}

async function flush(logger: ReturnType<typeof createLogger>): Promise<void> {
  await new Promise<void>((resolve) => {
    logger.on('finish', () => resolve());
    logger.end();
  });
  await new Promise((r) => setTimeout(r, 50));
}

function logEverySecretEveryWay(logger: ReturnType<typeof createLogger>): void {
  const child = upgradeLogger(logger, 'upg-42');
  child.info('connecting', { url: `postgres://app:${PASSWORD}@10.0.0.5/app` });
  child.info(`got header Authorization: Bearer ${TOKEN}`);
  child.info('request', { headers: { authorization: `Bearer ${TOKEN}`, 'x-api-key': TOKEN } });
  child.warn('config', { password: PASSWORD, db: { passwd: PASSWORD }, token: TOKEN });
  child.info('read root key', { rootKeyContent: ROOT_KEY.toString('utf8'), bytes: ROOT_KEY });
  child.info(`checksum input was ${ROOT_KEY.toString('utf8')} (oops)`);
  child.info(`base64 ${ROOT_KEY.toString('base64')} and hex ${ROOT_KEY.toString('hex')}`);
  child.error('failed', { err: new Error(`login failed for password=${PASSWORD}`) });
  child.info('ssh key', {
    note: '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----',
  });
}

const secretsToFind = [
  PASSWORD,
  TOKEN,
  ROOT_KEY.toString('utf8'),
  ROOT_KEY.toString('base64'),
  ROOT_KEY.toString('hex'),
  'b3BlbnNzaC1rZXktdjEAAAAA',
];

test.each(['json', 'pretty'] as const)(
  'no secret reaches any transport (%s console + JSON file)',
  async (format) => {
    const registry = new SecretRegistry();
    registry.add(ROOT_KEY);
    const console = new PassThrough();
    const read = collect(console);
    const file = join(mkdtempSync(join(tmpdir(), 'pairshift-log-')), 'operator.log');
    const logger = createLogger({ format, stream: console, file, registry, level: 'debug' });
    logEverySecretEveryWay(logger);
    await flush(logger);
    const outputs = { console: read(), file: readFileSync(file, 'utf8') };
    for (const [name, text] of Object.entries(outputs)) {
      expect({ name, lines: text.trim().split('\n').length }).toEqual({ name, lines: 9 });
      for (const s of secretsToFind)
        expect({ name, leaked: text.includes(s) }).toEqual({ name, leaked: false });
      expect(text).toContain(REDACTED);
      expect(text).toContain('upg-42');
    }
  },
);

test('JSON lines carry level, message, timestamp and the upgrade id', async () => {
  const stream = new PassThrough();
  const read = collect(stream);
  const logger = createLogger({ format: 'json', stream });
  upgradeLogger(logger, 'u-1').info('phase changed', { from: 'IDLE', to: 'PREPARE' });
  await flush(logger);
  const line = JSON.parse(read().trim());
  expect(line).toMatchObject({
    level: 'info',
    message: 'phase changed',
    upgradeId: 'u-1',
    from: 'IDLE',
    to: 'PREPARE',
  });
  expect(Date.parse(line.timestamp)).not.toBeNaN();
});

test('auto format is JSON when the stream is not a terminal', async () => {
  const stream = new PassThrough();
  const read = collect(stream);
  const logger = createLogger({ format: 'auto', stream });
  logger.info('hello');
  await flush(logger);
  expect(() => JSON.parse(read().trim())).not.toThrow();
});

test('redact keeps innocent data and masks by key, shape and value', () => {
  const registry = new SecretRegistry();
  registry.add('registered-secret-value');
  expect(
    redact(
      {
        phase: 'BACKUP',
        passes: 3,
        password: 'x',
        nested: { list: ['see registered-secret-value here', 'postgres://u:p@h/db'] },
        empty: { token: '' },
      },
      registry,
    ),
  ).toEqual({
    phase: 'BACKUP',
    passes: 3,
    password: REDACTED,
    nested: { list: [`see ${REDACTED} here`, `postgres://u:${REDACTED}@h/db`] },
    empty: { token: '' },
  });
});
