// Graceful shutdown of the API (RunningApi.drain, what SIGTERM calls): a
// request whose body is still streaming in when the drain starts is carried
// to its answer, not cut; a new connection after it is refused; the drain
// then reports nothing left. A slow client over a raw socket plays the
// upload (the body arrives in two halves, the drain in between).
import { connect, type Socket } from 'node:net';
import { jest } from '@jest/globals';
import { OPERATOR_TOKEN, startHarness } from './support.js';

jest.setTimeout(120_000);

function rawRequest(
  url: string,
  head: string,
): Promise<{ socket: Socket; answer: Promise<string> }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(head);
      let got = '';
      const answer = new Promise<string>((done) => {
        socket.on('data', (d) => {
          got += d.toString();
        });
        socket.on('close', () => done(got));
      });
      resolve({ socket, answer });
    });
    socket.once('error', reject);
  });
}

test('a request streaming in when the drain starts is answered; a new connection is refused', async () => {
  const h = await startHarness();
  try {
    const body = Buffer.from(
      JSON.stringify({
        pair: 'lab',
        package: { path: '/srv/pkgs/app-2.0.0.tar.gz', version: '2.0.0' },
        reason: 'drain test',
      }),
    );
    const { socket, answer } = await rawRequest(
      h.api.url,
      'POST /api/v1/upgrade/trigger HTTP/1.1\r\n' +
        `Host: ${new URL(h.api.url).host}\r\n` +
        `Authorization: Bearer ${OPERATOR_TOKEN}\r\n` +
        'Content-Type: application/json\r\n' +
        `Content-Length: ${body.length}\r\n` +
        'Connection: close\r\n\r\n',
    );
    socket.write(body.subarray(0, 40));
    await new Promise((r) => setTimeout(r, 300));
    const drained = h.api.drain(20_000);
    await new Promise((r) => setTimeout(r, 300));
    // the listener is closed: a new client cannot even connect
    await expect(fetch(`${h.api.url}/health`)).rejects.toThrow();
    socket.write(body.subarray(40));
    const text = await answer;
    expect(text).toMatch(/^HTTP\/1\.1 201 /);
    expect(text).toContain('"upgrade_id"');
    expect(await drained).toBe(0);
  } finally {
    await h.close();
  }
});
