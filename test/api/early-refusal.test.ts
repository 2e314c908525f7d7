// A request refused before its body is read (no token, a wrong token, the
// viewer role on a write, a body too large) must not hear "100 Continue"
// first, and its connection ends with the answer: the unread body would
// otherwise be parsed as the next request. Raw sockets, so what node and
// express put on the wire is what is checked.
import { connect, type Socket } from 'node:net';
import { jest } from '@jest/globals';
import { type Harness, OPERATOR_TOKEN, startHarness } from './support.js';

jest.setTimeout(60_000);

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

interface Exchange {
  /** Everything the server sent before the socket closed or the wait ended. */
  readonly received: string;
  readonly closedByServer: boolean;
}

/** Sends the head only; waits up to waitMs for the server's answer and for it to close. */
function sendHead(head: string, waitMs: number, onData?: (s: Socket, sofar: string) => void) {
  const { hostname, port } = new URL(h.api.url);
  return new Promise<Exchange>((resolve) => {
    const s = connect(Number(port), hostname);
    let received = '';
    let closedByServer = false;
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve({ received, closedByServer });
    };
    const timer = setTimeout(done, waitMs);
    s.on('data', (d) => {
      received += d.toString('latin1');
      onData?.(s, received);
    });
    s.on('end', () => {
      closedByServer = true;
      done();
    });
    s.on('error', done);
    s.write(head);
  });
}

const head = (extra: string) =>
  'POST /api/v1/upgrade/trigger HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n' +
  `Content-Length: 100000\r\nExpect: 100-continue\r\n${extra}\r\n`;

describe('refusals before the body', () => {
  it('no token: 401 without 100 Continue, and the connection closes', async () => {
    const r = await sendHead(head(''), 5000);
    expect(r.received).not.toMatch(/100 Continue/);
    expect(r.received).toMatch(/^HTTP\/1\.1 401 /);
    expect(r.received).toMatch(/\r\nconnection: close\r\n/i);
    expect(r.closedByServer).toBe(true);
  });

  it('a wrong token: 401, no 100 Continue, connection closed', async () => {
    const r = await sendHead(head('Authorization: Bearer not-the-token-at-all-000000\r\n'), 5000);
    expect(r.received).not.toMatch(/100 Continue/);
    expect(r.received).toMatch(/^HTTP\/1\.1 401 /);
    expect(r.closedByServer).toBe(true);
  });

  it('a good token with a body over the limit: 413, no 100 Continue, connection closed', async () => {
    const r = await sendHead(
      'POST /api/v1/upgrade/trigger HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n' +
        `Content-Length: 50000000\r\nExpect: 100-continue\r\nAuthorization: Bearer ${OPERATOR_TOKEN}\r\n\r\n`,
      5000,
    );
    expect(r.received).not.toMatch(/100 Continue/);
    expect(r.received).toMatch(/^HTTP\/1\.1 413 /);
    expect(r.received).toMatch(/PS-1601/);
    expect(r.closedByServer).toBe(true);
  });

  it('a good token hears 100 Continue before it sends the body', async () => {
    const body = JSON.stringify({
      pair: 'lab',
      package: { path: '/nonexistent/p.tar.gz', version: '2.0.0' },
    });
    const h2 =
      'POST /api/v1/upgrade/trigger HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\nExpect: 100-continue\r\n` +
      `Authorization: Bearer ${OPERATOR_TOKEN}\r\nConnection: close\r\n\r\n`;
    let sent = false;
    const r = await sendHead(h2, 10_000, (s, sofar) => {
      if (!sent && /^HTTP\/1\.1 100 Continue\r\n\r\n/.test(sofar)) {
        sent = true;
        s.write(body);
      }
    });
    expect(sent).toBe(true);
    // The body was read and judged: whatever the verdict, it is a final answer after the 100.
    expect(r.received).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 [2-5]\d\d /);
  });

  it('a request with 100 or more header fields is refused whole (431 problem), not judged on the first ones node kept', async () => {
    let many = 'GET /health HTTP/1.1\r\nHost: test\r\n';
    for (let i = 0; i < 150; i++) many += `x-filler-${i}: 1\r\n`;
    const r = await sendHead(`${many}\r\n`, 5000);
    expect(r.received).toMatch(/^HTTP\/1\.1 431 /);
    expect(r.received).toMatch(/application\/problem\+json/);
    expect(r.received).toMatch(/header fields/);
    expect(r.closedByServer).toBe(true);
    // A normal request on a new connection is still answered.
    const ok = await sendHead(
      'GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n',
      5000,
    );
    expect(ok.received).toMatch(/^HTTP\/1\.1 (200|503) /);
  });
});
