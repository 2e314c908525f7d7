// Pure pieces of the store: which store the options select, how URLs are
// redacted, how connection failures are worded.
import { join } from 'node:path';
import { chooseStore } from '../../src/store/open-store.js';
import {
  connectFailureReason,
  describeTarget,
  parseDatabaseUrl,
} from '../../src/store/postgres.js';
import { redactDatabaseUrl } from '../../src/store/redact.js';

describe('chooseStore', () => {
  it('prefers the URL option, then $PAIRSHIFT_DATABASE_URL, then the embedded store', () => {
    const env = { PAIRSHIFT_DATABASE_URL: 'postgres://env/db' };
    expect(chooseStore({ databaseUrl: 'postgres://opt/db' }, env, '/w')).toEqual({
      kind: 'postgres',
      databaseUrl: 'postgres://opt/db',
    });
    expect(chooseStore({}, env, '/w')).toEqual({
      kind: 'postgres',
      databaseUrl: 'postgres://env/db',
    });
    expect(chooseStore({}, {}, '/w')).toEqual({
      kind: 'embedded',
      dataDir: join('/w', '.pairshift', 'data'),
    });
  });

  it('uses --data-dir over $PAIRSHIFT_DATA_DIR, and an explicit folder over an env URL', () => {
    expect(chooseStore({}, { PAIRSHIFT_DATA_DIR: '/env/data' }, '/w')).toEqual({
      kind: 'embedded',
      dataDir: '/env/data',
    });
    expect(
      chooseStore(
        { dataDir: '/opt/data' },
        { PAIRSHIFT_DATA_DIR: '/env/data', PAIRSHIFT_DATABASE_URL: 'postgres://x/y' },
        '/w',
      ),
    ).toEqual({ kind: 'embedded', dataDir: '/opt/data' });
  });

  it('refuses both a URL and a folder', () => {
    expect(() => chooseStore({ databaseUrl: 'postgres://x/y', dataDir: '/d' }, {}, '/w')).toThrow(
      'give either a database URL or a data folder, not both',
    );
  });
});

describe('redactDatabaseUrl', () => {
  it.each([
    ['postgres://alice:s3cret@db:5432/ops', 'postgres://alice:***@db:5432/ops'],
    ['postgres://alice@db/ops', 'postgres://alice@db/ops'],
    [
      'postgres://db/ops?password=s3cret&sslmode=require',
      'postgres://db/ops?password=***&sslmode=require',
    ],
    ['postgres://alice:s3cret@db:port/ops', 'postgres://alice:***@db:port/ops'],
    ['host=db password=s3cret user=alice', 'host=db password=*** user=alice'],
  ])('%s -> %s', (raw, redacted) => {
    expect(redactDatabaseUrl(raw)).toBe(redacted);
    expect(redactDatabaseUrl(raw)).not.toContain('s3cret');
  });
});

describe('parseDatabaseUrl', () => {
  it('reads host, port and database with defaults', () => {
    expect(parseDatabaseUrl('postgres://u:p@10.0.0.1:6000/ops')).toEqual({
      host: '10.0.0.1',
      port: 6000,
      database: 'ops',
    });
    expect(parseDatabaseUrl('postgresql://db')).toEqual({
      host: 'db',
      port: 5432,
      database: 'postgres',
    });
    expect(describeTarget(parseDatabaseUrl('postgres://[::1]:5433/x'))).toBe('[::1]:5433');
  });

  it('refuses other schemes without showing the password', () => {
    expect(() => parseDatabaseUrl('mysql://u:s3cret@db/x')).toThrow(
      'invalid database URL mysql://u:***@db/x (scheme must be postgres:// or postgresql://)',
    );
  });
});

describe('connectFailureReason', () => {
  it.each([
    [
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }),
      'connection refused',
    ],
    [
      new AggregateError([Object.assign(new Error('x'), { code: 'ECONNREFUSED' })], ''),
      'connection refused',
    ],
    [Object.assign(new Error('getaddrinfo ENOTFOUND db'), { code: 'ENOTFOUND' }), 'host not found'],
    [
      Object.assign(new Error('password authentication failed for user "a"'), { code: '28P01' }),
      'password authentication failed',
    ],
    [
      Object.assign(new Error('database "x" does not exist'), { code: '3D000' }),
      'database does not exist',
    ],
    [new Error('timeout expired'), 'connection timed out'],
  ])('%s', (err, reason) => {
    expect(connectFailureReason(err)).toBe(reason);
  });
});
