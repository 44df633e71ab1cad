// Answers written straight to a socket: CONNECT and Upgrade requests leave node:http's response
// machinery, so their refusals are serialised here (same problem+json body as everywhere else).
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { KeylessError } from '../../errors.ts';
import { toProblem } from './errors.ts';

export function rawProblem(socket: Duplex, err: KeylessError, target: string | undefined): void {
  const p = toProblem(err, target);
  const head = [`HTTP/1.1 ${p.status} ${STATUS_CODES[p.status] ?? 'Error'}`, ...Object.entries(p.headers).map(([k, v]) => `${k}: ${v}`), 'connection: close', '', ''].join('\r\n');
  if (socket.writable) socket.end(head + p.body);
  else socket.destroy();
}
