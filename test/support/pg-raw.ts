// Raw PostgreSQL startup-phase bytes for bad-input tests, and a socket exchange helper.
import { connect } from 'node:net';

export function startupPacket(major: number, minor: number, params: Record<string, string>): Buffer {
  const body = Buffer.from(`${Object.entries(params).map(([k, v]) => `${k}\0${v}\0`).join('')}\0`, 'utf8');
  const head = Buffer.alloc(8);
  head.writeUInt32BE(8 + body.length, 0);
  head.writeUInt16BE(major, 4);
  head.writeUInt16BE(minor, 6);
  return Buffer.concat([head, body]);
}

export function requestPacket(code: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(8, 0);
  b.writeUInt32BE(code, 4);
  return b;
}

export const GSSENC_REQUEST = requestPacket(80877104);
export const SSL_REQUEST = requestPacket(80877103);

/** The fields of the first ErrorResponse in `buf`, by type letter, or undefined. */
export function errorFields(buf: Buffer): Record<string, string> | undefined {
  const at = buf.indexOf(0x45);
  if (at < 0 || buf.length < at + 5) return undefined;
  const len = buf.readUInt32BE(at + 1);
  const body = buf.subarray(at + 5, at + 1 + len);
  const out: Record<string, string> = {};
  for (const part of body.toString('utf8').split('\0')) if (part.length > 1) out[part[0]!] = part.slice(1);
  return out;
}

/**
 * Send `bytes` (each element written separately), collect what comes back until the server
 * closes or `done` says so.
 */
export function exchange(port: number, bytes: Buffer[], opts: { done?: (b: Buffer) => boolean; endAfterWrite?: boolean } = {}): Promise<{ reply: Buffer; closedByServer: boolean }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    let reply = Buffer.alloc(0);
    let finished = false;
    const finish = (closedByServer: boolean): void => {
      if (finished) return;
      finished = true;
      s.destroy();
      resolve({ reply, closedByServer });
    };
    s.on('data', (d) => {
      reply = Buffer.concat([reply, d]);
      if (opts.done?.(reply)) finish(false);
    });
    s.on('end', () => finish(true));
    s.on('close', () => finish(true));
    s.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? finish(true) : reject(err)));
    s.on('connect', () => {
      for (const b of bytes) s.write(b);
      if (opts.endAfterWrite) s.end();
    });
  });
}
