// A small HTTP/1.1 server loop over a socket. Node's own parser (llhttp) rejects methods it does
// not know, and Vault's API uses `LIST`, so the double parses requests itself. Enough of RFC 9112
// for real clients: keep-alive, pipelined requests handled in order, Content-Length and chunked
// bodies, Expect: 100-continue, HEAD.
import type { Socket } from 'node:net';
import { STATUS_CODES } from 'node:http';

export interface HttpRequest {
  method: string;
  /** The request target as sent (origin form: path and query). */
  target: string;
  /** Header names lower-cased; repeated headers joined with ", ". */
  headers: Map<string, string>;
  body: Buffer;
  remoteAddress: string | undefined;
}

export interface HttpResponse {
  status: number;
  headers: Array<[string, string]>;
  body?: Buffer | string;
  /** Drop the connection without answering (a network failure, for tests). */
  destroy?: boolean;
}

export type HttpHandler = (req: HttpRequest) => Promise<HttpResponse>;

export interface Http1Limits {
  maxHeaderBytes: number;
  maxBodyBytes: number;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

type Parsed =
  | { kind: 'need-more'; wantsContinue: boolean }
  | { kind: 'error'; status: number }
  | { kind: 'request'; req: Omit<HttpRequest, 'remoteAddress'>; consumed: number; keepAlive: boolean };

function parse(buf: Buffer, limits: Http1Limits): Parsed {
  const headEnd = buf.indexOf('\r\n\r\n');
  if (headEnd < 0) return buf.length > limits.maxHeaderBytes ? { kind: 'error', status: 431 } : { kind: 'need-more', wantsContinue: false };
  if (headEnd > limits.maxHeaderBytes) return { kind: 'error', status: 431 };
  const lines = buf.subarray(0, headEnd).toString('latin1').split('\r\n');
  const m = /^(\S+) (\S+) HTTP\/(1\.[01])$/.exec(lines[0] ?? '');
  if (!m || !TOKEN.test(m[1]!)) return { kind: 'error', status: 400 };
  const [, method, target, version] = m as unknown as [string, string, string, string];
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) return { kind: 'error', status: 400 };
    const name = line.slice(0, colon).toLowerCase();
    if (!TOKEN.test(name)) return { kind: 'error', status: 400 };
    const value = line.slice(colon + 1).trim();
    const prev = headers.get(name);
    headers.set(name, prev === undefined ? value : `${prev}, ${value}`);
  }
  const conn = (headers.get('connection') ?? '').toLowerCase();
  const keepAlive = version === '1.1' ? !conn.split(',').some((t) => t.trim() === 'close') : conn.split(',').some((t) => t.trim() === 'keep-alive');
  const wantsContinue = (headers.get('expect') ?? '').toLowerCase() === '100-continue';
  let offset = headEnd + 4;
  const te = headers.get('transfer-encoding');
  if (te !== undefined) {
    if (te.toLowerCase().split(',').map((s) => s.trim()).at(-1) !== 'chunked') return { kind: 'error', status: 400 };
    const chunks: Buffer[] = [];
    let size = 0;
    for (;;) {
      const lineEnd = buf.indexOf('\r\n', offset);
      if (lineEnd < 0) return { kind: 'need-more', wantsContinue };
      const sizeText = buf.subarray(offset, lineEnd).toString('latin1').split(';')[0]!.trim();
      if (!/^[0-9a-fA-F]+$/.test(sizeText)) return { kind: 'error', status: 400 };
      const n = parseInt(sizeText, 16);
      size += n;
      if (size > limits.maxBodyBytes) return { kind: 'error', status: 413 };
      offset = lineEnd + 2;
      if (n === 0) {
        // trailers, then the final CRLF
        for (;;) {
          const tEnd = buf.indexOf('\r\n', offset);
          if (tEnd < 0) return { kind: 'need-more', wantsContinue };
          const empty = tEnd === offset;
          offset = tEnd + 2;
          if (empty) break;
        }
        return { kind: 'request', req: { method, target, headers, body: Buffer.concat(chunks) }, consumed: offset, keepAlive };
      }
      if (buf.length < offset + n + 2) return { kind: 'need-more', wantsContinue };
      chunks.push(buf.subarray(offset, offset + n));
      offset += n + 2;
    }
  }
  const cl = headers.get('content-length');
  let length = 0;
  if (cl !== undefined) {
    if (!/^\d+$/.test(cl)) return { kind: 'error', status: 400 };
    length = Number(cl);
    if (length > limits.maxBodyBytes) return { kind: 'error', status: 413 };
  }
  if (buf.length < offset + length) return { kind: 'need-more', wantsContinue };
  return { kind: 'request', req: { method, target, headers, body: Buffer.from(buf.subarray(offset, offset + length)) }, consumed: offset + length, keepAlive };
}

function serialize(res: HttpResponse, head: boolean, keepAlive: boolean, date: Date): Buffer {
  const body = res.body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(res.body) ? res.body : Buffer.from(res.body);
  const lines = [`HTTP/1.1 ${res.status} ${STATUS_CODES[res.status] ?? 'status code'}`];
  for (const [k, v] of res.headers) lines.push(`${k}: ${v}`);
  lines.push(`Date: ${date.toUTCString()}`);
  if (res.status !== 204 && res.status !== 304) lines.push(`Content-Length: ${body.length}`);
  if (!keepAlive) lines.push('Connection: close');
  const headBuf = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  return head || res.status === 204 || res.status === 304 ? headBuf : Buffer.concat([headBuf, body]);
}

/** Serve requests arriving on `socket` one at a time, in order. */
export function serveHttp1(socket: Socket, handler: HttpHandler, limits: Http1Limits): void {
  let buf: Buffer = Buffer.alloc(0);
  let busy = false;
  let done = false;
  let continueSent = false;

  const finish = (): void => {
    done = true;
  };
  socket.on('close', finish);
  socket.on('error', finish);
  socket.on('data', (chunk: Buffer) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    void pump();
  });

  async function pump(): Promise<void> {
    if (busy) return;
    busy = true;
    try {
      while (!done && buf.length > 0) {
        const p = parse(buf, limits);
        if (p.kind === 'need-more') {
          if (p.wantsContinue && !continueSent) {
            continueSent = true;
            socket.write('HTTP/1.1 100 Continue\r\n\r\n');
          }
          return;
        }
        if (p.kind === 'error') {
          done = true;
          socket.end(serialize({ status: p.status, headers: [['Content-Type', 'text/plain; charset=utf-8']], body: `${p.status} ${STATUS_CODES[p.status] ?? ''}` }, false, false, new Date()));
          return;
        }
        buf = buf.subarray(p.consumed);
        continueSent = false;
        let res: HttpResponse;
        try {
          res = await handler({ ...p.req, remoteAddress: socket.remoteAddress });
        } catch (err) {
          res = { status: 500, headers: [['Content-Type', 'application/json']], body: JSON.stringify({ errors: [String(err)] }) };
        }
        if (done) return;
        if (res.destroy) {
          done = true;
          socket.destroy();
          return;
        }
        socket.write(serialize(res, p.req.method === 'HEAD', p.keepAlive, new Date()));
        if (!p.keepAlive) {
          done = true;
          socket.end();
          return;
        }
      }
    } finally {
      busy = false;
    }
  }
}
