// CONNECT. Keyless cannot add a credential inside a TLS tunnel, so a tunnel would carry the app's
// request without one: CONNECT is refused with a message telling the app to send plain http://
// URLs (Keyless speaks HTTPS upstream). Only `host:port`s a forward target lists under
// `passthrough` are tunnelled, untouched, after the target's allow rules.
import type { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { HttpTargetConfig } from '../../config/schema.ts';
import { KeylessError, asKeylessError } from '../../errors.ts';
import { splice } from '../../proxy/splice.ts';
import type { Route } from '../types.ts';
import { HttpStatusError } from './errors.ts';
import { bindOnce, markRelayed, type ConnState } from './conn.ts';
import { rawProblem } from './raw.ts';
import { modeOf, ownerOf, parseAuthority } from './routing.ts';
import { upstreamError } from './upstream.ts';

export const CONNECT_REFUSED = 'CONNECT is not tunnelled: send plain http:// URLs through Keyless (set HTTP_PROXY, not HTTPS_PROXY); it adds the credential and uses HTTPS to the upstream';

export async function handleConnect(route: Route, st: ConnState, req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
  const { ctx } = st;
  const authority = req.url ?? '';
  let target: string | undefined;
  let upstream: Socket | undefined;
  try {
    const parsed = parseAuthority(authority, 443);
    const owner = parsed && modeOf(route) === 'forward' ? ownerOf(route, parsed.hostname, parsed.port, 'passthrough') : undefined;
    if (!parsed || !owner || !parsed.explicitPort) {
      throw new HttpStatusError(403, 'KL_ERR_UNSUPPORTED', `CONNECT ${authority} refused: not listed for pass-through`, `(${CONNECT_REFUSED})`);
    }
    target = owner.name;
    bindOnce(st, owner);
    const cfg = owner.config as HttpTargetConfig;
    upstream = await dial(parsed.hostname, parsed.port, cfg.timeouts.connect, ctx.signal).catch((err: unknown) => {
      throw upstreamError(err, owner.name, `${parsed.hostname}:${parsed.port}`);
    });
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) upstream.write(head);
    markRelayed(st);
    ctx.log.info({ authority }, 'CONNECT pass-through');
    await splice(socket, upstream, { idleMs: cfg.timeouts.idle, log: ctx.log, signal: ctx.signal });
  } catch (err) {
    upstream?.destroy();
    const e = asKeylessError(err, 'KL_ERR_UPSTREAM_ERROR', `CONNECT ${authority}: ${String(err)}`);
    if (!st.relayed) ctx.failed(e);
    else ctx.log.info({ code: e.code, err: e.message }, 'CONNECT refused');
    rawProblem(socket, e, target);
  }
}

function dial(host: string, port: number, timeoutMs: number, signal: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, noDelay: true });
    const timer = timeoutMs > 0 ? setTimeout(() => fail(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' })), timeoutMs) : undefined;
    const onAbort = (): void => fail(new KeylessError('KL_ERR_SHUTTING_DOWN', 'shutting down'));
    signal.addEventListener('abort', onAbort, { once: true });
    function fail(err: Error): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      s.destroy();
      reject(err);
    }
    s.once('error', fail);
    s.once('connect', () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      s.off('error', fail);
      resolve(s);
    });
  });
}
