// One request through to the upstream and its response back: end-to-end headers, the credential
// injected (replacing the app's), bodies streamed both ways with backpressure, a 401 answered by
// one credential refresh and retry when the request can be replayed, echoed secrets redacted.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import type { Agent } from 'undici';
import type { Credential } from '../../credentials/types.ts';
import { KeylessError } from '../../errors.ts';
import type { ConnectionContext } from '../types.ts';
import { endToEndRequestHeaders, endToEndResponseHeaders, type Headers } from './hop-by-hop.ts';
import type { Injector, Outgoing } from './inject/index.ts';
import { redactHeaders } from './redact.ts';
import type { Routed } from './routing.ts';
import { upstreamError } from './upstream.ts';

export interface Upstream {
  readonly agent: Agent;
  /** HTTP/1.1 only, for Upgrade requests (an HTTP/2 connection cannot carry them). */
  h1Agent(): Agent;
  readonly injector: Injector;
}

export interface ExchangeOptions {
  ctx: ConnectionContext;
  routed: Routed;
  upstream: Upstream;
  /** Scheme the client used to reach Keyless, for X-Forwarded-Proto. */
  clientProto: 'http' | 'https';
  /** Called once the upstream's response head is on its way to the client. */
  onResponse(status: number): void;
}

/** Build the upstream request from the client's, before any credential is added. */
export function outgoingFrom(req: IncomingMessage, routed: Routed, clientProto: 'http' | 'https', peer: string): Outgoing {
  const headers: Headers = endToEndRequestHeaders(req.headers);
  headers.host = routed.host;
  if (routed.cfg.forwarded) {
    const prior = req.headers['x-forwarded-for'];
    headers['x-forwarded-for'] = prior ? `${Array.isArray(prior) ? prior.join(', ') : prior}, ${peer}` : peer;
    headers['x-forwarded-proto'] = clientProto;
  }
  return { method: req.method ?? 'GET', origin: routed.origin, path: routed.path, headers, body: hasBody(req) ? req : null };
}

function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  if (len !== undefined) return Number(len) > 0;
  return req.headers['transfer-encoding'] !== undefined;
}

export async function exchange(req: IncomingMessage, res: ServerResponse, opts: ExchangeOptions): Promise<void> {
  const { ctx, routed, upstream } = opts;
  const name = routed.target.name;
  const base = outgoingFrom(req, routed, opts.clientProto, ctx.peer.address);
  // undici takes an EventEmitter as its abort signal: far cheaper per request than an
  // AbortController. The client going away (or ctx.signal, which destroys the client socket)
  // closes `res` early, and that aborts the upstream request.
  const abort = new EventEmitter();
  let clientGone = false;
  const onClose = (): void => {
    if (res.writableFinished) return;
    clientGone = true;
    abort.emit('abort');
  };
  res.once('close', onClose);
  try {
    let cred: Credential = await ctx.credentials();
    for (let attempt = 0; ; attempt++) {
      const out: Outgoing = { ...base, headers: { ...base.headers } };
      const secrets = await upstream.injector.apply(out, cred, { target: name, signal: ctx.signal }).catch(async (err: unknown) => {
        // A token endpoint refusing the stored client credentials: they may have rotated; refetch once.
        if (!(err instanceof KeylessError) || err.code !== 'KL_ERR_UPSTREAM_AUTH' || attempt > 0) throw err;
        ctx.log.warn({ version: cred.version, err: err.message }, 'credential refused; refetching once');
        cred = await ctx.credentials(cred);
        attempt++;
        return upstream.injector.apply(out, cred, { target: name, signal: ctx.signal });
      });
      const replayable = out.body === null || Buffer.isBuffer(out.body);
      let rejected = false;
      try {
        await upstream.agent.stream(
          { origin: out.origin, path: out.path, method: out.method, headers: out.headers, body: out.body, signal: abort },
          ({ statusCode, headers }) => {
            if (statusCode === 401) {
              rejected = true;
              if (attempt === 0 && replayable) return discard();
            }
            const h = redactHeaders(endToEndResponseHeaders(headers), secrets);
            res.writeHead(statusCode, h);
            opts.onResponse(statusCode);
            return res;
          },
        );
      } catch (err) {
        if (clientGone) throw new KeylessError('KL_ERR_CLIENT_CLOSED', 'client went away mid-request', { cause: err });
        throw upstreamError(err, name, out.origin);
      }
      if (!rejected) return;
      // The upstream refused the credential: drop it (and any token made from it) and fetch anew.
      upstream.injector.rejected?.(cred, secrets);
      const retry = !res.headersSent;
      ctx.metrics.upstreamAuthFailures.inc({ target: name, reason: retry ? 'rejected_retrying' : 'rejected' });
      if (attempt > 0) {
        ctx.log.warn({ version: cred.version }, 'upstream answered 401 to the refetched credential too; passing it on');
        return;
      }
      ctx.log.warn({ version: cred.version, retry }, 'upstream answered 401; refetching the credential');
      if (!retry) {
        // Not replayable (a streamed body already went): the app got the 401; its next request uses the fresh credential.
        ctx.credentials(cred).catch(() => undefined);
        return;
      }
      cred = await ctx.credentials(cred);
    }
  } finally {
    res.off('close', onClose);
  }
}

function discard(): Writable {
  return new Writable({
    write(_chunk, _enc, cb) {
      cb();
    },
  });
}
