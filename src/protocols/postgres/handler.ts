// One PostgreSQL client connection: answer SSLRequest/GSSENCRequest, read the startup packet,
// route by database, authenticate upstream with the stored credential (refetch and retry once on
// rejection), finish the client's login with Keyless's own cancel key, then splice.
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { PostgresTargetConfig } from '../../config/schema.ts';
import { requireField } from '../../credentials/fields.ts';
import type { Credential } from '../../credentials/types.ts';
import { KeylessError, asKeylessError } from '../../errors.ts';
import type { Logger } from '../../observability/logger.ts';
import { splice } from '../../proxy/splice.ts';
import { acceptTls } from '../../proxy/transport.ts';
import type { ConnectionContext, ProtocolHandler, Route, Target } from '../types.ts';
import { CancelRegistry } from './cancel.ts';
import { toErrorResponse } from './errors.ts';
import { PacketReader } from './reader.ts';
import { openSession, type UpstreamEndpoint, type UpstreamSession } from './upstream.ts';
import {
  AUTHENTICATION_OK,
  MAX_STARTUP_PACKET,
  WireError,
  decodeStartupPacket,
  encodeBackendKeyData,
  encodeNegotiateProtocolVersion,
  encodeParameterStatus,
  encodeReadyForQuery,
} from './wire.ts';

const TERMINATE = Buffer.from([0x58 /* X */, 0, 0, 0, 4]);
/** How many SSLRequest/GSSENCRequest rounds a client may make before its startup packet. */
const MAX_NEGOTIATIONS = 2;
const CANCEL_TIMEOUT_MS = 5_000;
/** The only Keyless-side startup parameters; everything else the client sent passes upstream. */
const NOT_FORWARDED = new Set(['user', 'database']);

interface Startup {
  params: Map<string, string>;
  minor: number;
}

export class PostgresHandler implements ProtocolHandler {
  readonly protocol = 'postgres' as const;
  readonly cancels = new CancelRegistry();
  readonly #log: Logger;
  /** Upstream endpoints (with the CA file read once) per target config object. */
  readonly #endpoints = new WeakMap<PostgresTargetConfig, UpstreamEndpoint>();

  constructor(log: Logger) {
    this.#log = log;
  }

  async handle(client: Socket, route: Route, ctx: ConnectionContext): Promise<void> {
    let socket: Socket | TLSSocket = client;
    let target: Target | undefined;
    const hs = new AbortController();
    const timer = setTimeout(() => hs.abort(new KeylessError('KL_ERR_HANDSHAKE_TIMEOUT', 'client did not complete the startup in time')), firstTimeout(route));
    const handshake = AbortSignal.any([ctx.signal, hs.signal]);
    let upstream: UpstreamSession | undefined;
    try {
      const first = await this.#negotiate(client, route, handshake, ctx);
      if (first.kind === 'cancel') return;
      socket = first.socket;
      const { startup, reader } = first;
      const database = startup.params.get('database') ?? startup.params.get('user');
      target = route.resolve(database);
      if (!target) {
        throw new KeylessError('KL_ERR_UNKNOWN_TARGET', `no target routes database "${database ?? ''}" on ${route.listen}`, {
          clientDetail: JSON.stringify(database ?? ''),
        });
      }
      ctx.bind(target);
      const refused = ctx.admit();
      if (refused) throw refused;
      clearTimeout(timer);

      const cfg = target.config as PostgresTargetConfig;
      const upstreamDb = cfg.upstream.database ?? database;
      let cred = await ctx.credentials();
      upstream = await this.#login(target, cfg, startup, upstreamDb, cred, ctx).catch(async (err: unknown) => {
        if (!(err instanceof KeylessError) || err.code !== 'KL_ERR_UPSTREAM_AUTH') throw err;
        ctx.metrics.upstreamAuthFailures.inc({ target: target!.name, reason: 'rejected_retrying' });
        ctx.log.warn({ version: cred.version, err: err.message }, 'upstream rejected the credential; refetching once');
        cred = await ctx.credentials(cred);
        return this.#login(target!, cfg, startup, upstreamDb, cred, ctx);
      });

      const key = this.cancels.issue({
        upstream: this.#endpoint(cfg),
        processId: upstream.backendKey?.processId ?? 0,
        secretKey: upstream.backendKey?.secretKey ?? Buffer.alloc(4),
        target: target.name,
      });
      try {
        const hello: Buffer[] = [];
        const ignored = [...startup.params.keys()].filter((k) => k.startsWith('_pq_.'));
        if (startup.minor > 0 || ignored.length > 0) hello.push(encodeNegotiateProtocolVersion(0, ignored));
        hello.push(AUTHENTICATION_OK);
        for (const [k, v] of upstream.parameters) hello.push(encodeParameterStatus(k, v));
        hello.push(...upstream.notices);
        hello.push(encodeBackendKeyData(key.processId, key.secretKey), encodeReadyForQuery(upstream.status));
        socket.write(Buffer.concat(hello));
        // Bytes either side sent beyond the handshake go first, so nothing is lost at the handoff.
        const fromClient = reader.detach();
        if (fromClient.length > 0) upstream.socket.write(fromClient);
        if (upstream.leftover.length > 0) socket.write(upstream.leftover);
        const rawUp = upstream.raw;
        ctx.relaying({ fromClient: () => client.bytesRead, fromUpstream: () => rawUp.bytesRead });
        const name = target.name;
        await splice(socket, upstream.socket, {
          idleMs: cfg.timeouts.idle,
          log: ctx.log,
          signal: ctx.signal,
          farewell: (why) =>
            toErrorResponse(
              why === 'idle' ? new KeylessError('KL_ERR_IDLE_TIMEOUT', 'idle timeout') : abortReason(ctx.signal),
              name,
            ),
        });
      } finally {
        key.release();
      }
    } catch (err) {
      clearTimeout(timer);
      upstream?.socket.destroy();
      const e = asKeylessError(err, 'KL_ERR_PROTOCOL', `client: ${(err as Error)?.message ?? String(err)}`);
      if (e.code === 'KL_ERR_UPSTREAM_AUTH') ctx.metrics.upstreamAuthFailures.inc({ target: target?.name ?? route.listen, reason: 'rejected' });
      if (e.code === 'KL_ERR_UPSTREAM_AUTH_METHOD') ctx.metrics.upstreamAuthFailures.inc({ target: target?.name ?? route.listen, reason: 'unsupported_method' });
      ctx.failed(e);
      if (e.code !== 'KL_ERR_CLIENT_CLOSED' && !socket.destroyed && socket.writable) {
        await new Promise<void>((resolve) => socket.end(toErrorResponse(e, target?.name), resolve));
      }
    } finally {
      clearTimeout(timer);
      socket.destroy();
    }
  }

  /** SSLRequest / GSSENCRequest rounds, then the StartupMessage or a CancelRequest. */
  async #negotiate(
    client: Socket,
    route: Route,
    signal: AbortSignal,
    ctx: ConnectionContext,
  ): Promise<{ kind: 'cancel' } | { kind: 'startup'; socket: Socket | TLSSocket; startup: Startup; reader: PacketReader }> {
    let socket: Socket | TLSSocket = client;
    let reader = new PacketReader(client, 'client');
    for (let round = 0; ; round++) {
      const body = await reader.startup(MAX_STARTUP_PACKET, signal);
      let packet;
      try {
        packet = decodeStartupPacket(body);
      } catch (err) {
        if (err instanceof WireError) throw new KeylessError('KL_ERR_PROTOCOL', `client: ${err.message}`);
        throw err;
      }
      if ((packet.kind === 'ssl' || packet.kind === 'gssenc') && round >= MAX_NEGOTIATIONS) {
        throw new KeylessError('KL_ERR_PROTOCOL', 'client: too many encryption requests');
      }
      switch (packet.kind) {
        case 'gssenc':
          client.write('N');
          continue;
        case 'ssl': {
          if (!route.tls || socket instanceof TLSSocket) {
            client.write('N');
            continue;
          }
          // Bytes after SSLRequest and before the TLS handshake would be plaintext injection.
          if (reader.buffered > 0) throw new KeylessError('KL_ERR_PROTOCOL', 'client sent data after SSLRequest before the TLS handshake');
          reader.detach();
          client.write('S');
          socket = await acceptTls(client, route.tls, signal, ['postgresql']);
          reader = new PacketReader(socket, 'client');
          continue;
        }
        case 'cancel': {
          // A cancel is answered by closing; errors forwarding it are logged, not sent.
          try {
            await this.cancels.forward(packet.processId, packet.secretKey, CANCEL_TIMEOUT_MS, ctx.log);
          } catch (err) {
            ctx.log.warn({ err: (err as Error).message }, 'cancel request could not be forwarded');
          }
          ctx.finished('cancel');
          return { kind: 'cancel' };
        }
        case 'startup':
          if (packet.major !== 3) {
            throw new KeylessError('KL_ERR_UNSUPPORTED', `client: unsupported frontend protocol ${packet.major}.${packet.minor}`, {
              clientDetail: `(frontend protocol ${packet.major}.${packet.minor}; Keyless speaks 3.0)`,
            });
          }
          if (!packet.params.has('user')) throw new KeylessError('KL_ERR_PROTOCOL', 'client: startup packet has no user');
          return { kind: 'startup', socket, reader, startup: { params: packet.params, minor: packet.minor } };
      }
    }
  }

  async #login(
    target: Target,
    cfg: PostgresTargetConfig,
    startup: Startup,
    database: string | undefined,
    cred: Credential,
    ctx: ConnectionContext,
  ): Promise<UpstreamSession> {
    const params = new Map<string, string>();
    params.set('user', requireField(cred, 'username', target.name).reveal());
    if (database !== undefined) params.set('database', database);
    for (const [k, v] of startup.params) {
      if (!NOT_FORWARDED.has(k) && !k.startsWith('_pq_.')) params.set(k, v);
    }
    const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(cfg.timeouts.connect)]);
    const session = await openSession(this.#endpoint(cfg), params, cred, signal);
    ctx.log.debug({ version: cred.version, auth: session.auth, tls: session.socket instanceof TLSSocket, user: params.get('user') }, 'upstream login ok');
    return session;
  }

  #endpoint(cfg: PostgresTargetConfig): UpstreamEndpoint {
    let ep = this.#endpoints.get(cfg);
    if (!ep) {
      const t = cfg.upstream.tls;
      ep = {
        host: cfg.upstream.host,
        port: cfg.upstream.port,
        tls: { mode: t.mode, ca: t.ca ? readFileSync(t.ca) : undefined, servername: t.servername },
      };
      this.#endpoints.set(cfg, ep);
    }
    return ep;
  }

  async check(target: Target, cred: Credential, signal: AbortSignal): Promise<string> {
    const cfg = target.config as PostgresTargetConfig;
    const user = requireField(cred, 'username', target.name).reveal();
    const database = cfg.upstream.database ?? cfg.route?.database ?? user;
    const params = new Map([
      ['user', user],
      ['database', database],
      ['application_name', 'keyless check'],
    ]);
    const session = await openSession(this.#endpoint(cfg), params, cred, signal);
    session.socket.end(TERMINATE);
    return `logged in as ${user} to ${database} (${session.auth}${session.socket instanceof TLSSocket ? `, TLS ${cfg.upstream.tls.mode}` : ', no TLS'})`;
  }

  async close(): Promise<void> {
    this.#log.debug({ cancelKeys: this.cancels.size }, 'postgres handler closed');
  }
}

/** Why Keyless is ending the connection: the abort reason (shutdown, reconfigured target). */
export function abortReason(signal: AbortSignal): KeylessError {
  return signal.reason instanceof KeylessError ? signal.reason : new KeylessError('KL_ERR_SHUTTING_DOWN', 'drain deadline passed');
}

function firstTimeout(route: Route): number {
  return route.handshakeMs || 2 ** 31 - 1; // 0 disables
}
