// WebSocket (any HTTP/1.1 Upgrade): the handshake goes upstream with the credential injected like
// any request; on 101 the upstream's answer is relayed and the two sockets are spliced.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { upgrade } from 'undici';
import { asKeylessError } from '../../errors.ts';
import { splice } from '../../proxy/splice.ts';
import type { Route, Target } from '../types.ts';
import { bindOnce, markRelayed, type ConnState } from './conn.ts';
import { outgoingFrom, type Upstream } from './exchange.ts';
import { isHopByHop } from './hop-by-hop.ts';
import { rawProblem } from './raw.ts';
import { redactHeaders } from './redact.ts';
import { routeRequest } from './routing.ts';
import { upstreamError } from './upstream.ts';

export async function handleUpgrade(route: Route, st: ConnState, req: IncomingMessage, socket: Duplex, head: Buffer, upstreamOf: (t: Target) => Upstream): Promise<void> {
  const { ctx } = st;
  let target: string | undefined;
  let upSocket: Duplex | undefined;
  try {
    const routed = routeRequest(route, req);
    target = routed.target.name;
    bindOnce(st, routed.target);
    const up = upstreamOf(routed.target);
    const out = outgoingFrom(req, routed, route.tls ? 'https' : 'http', ctx.peer.address);
    out.body = null;
    const cred = await ctx.credentials();
    const secrets = await up.injector.apply(out, cred, { target: routed.target.name, signal: ctx.signal });
    const protocol = String(req.headers.upgrade ?? 'websocket');
    const answer = await upgrade(`${out.origin}${out.path}`, {
      dispatcher: up.h1Agent(),
      method: out.method,
      headers: out.headers,
      protocol,
      signal: ctx.signal,
    }).catch((err: unknown) => {
      throw upstreamError(err, routed.target.name, out.origin);
    });
    upSocket = answer.socket;
    const headers = redactHeaders(
      Object.fromEntries(Object.entries(answer.headers).filter((e): e is [string, string | string[]] => e[1] !== undefined && !isHopByHop(e[0]))),
      secrets,
    );
    const lines = ['HTTP/1.1 101 Switching Protocols', `upgrade: ${protocol}`, 'connection: Upgrade'];
    for (const [k, v] of Object.entries(headers)) for (const x of Array.isArray(v) ? v : [v]) lines.push(`${k}: ${x}`);
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (head.length > 0) upSocket.write(head);
    markRelayed(st);
    ctx.log.debug({ protocol }, 'upgraded');
    await splice(socket, upSocket, { idleMs: 0, log: ctx.log, signal: ctx.signal });
  } catch (err) {
    upSocket?.destroy();
    const e = asKeylessError(err, 'KL_ERR_UPSTREAM_ERROR', `upgrade: ${String(err)}`);
    if (!st.relayed) ctx.failed(e);
    else ctx.log.warn({ code: e.code, err: e.message }, 'upgrade failed');
    rawProblem(socket, e, target);
  }
}
