// One MySQL/MariaDB client connection. The server speaks first, and the connection id it
// announces is what KILL QUERY names, so Keyless dials upstream at accept and greets the client
// with upstream's version, id and flags (no credential needed yet). After the client's
// HandshakeResponse41 (routed by schema on a shared listener) it fetches the credential, logs in
// upstream (refetching and retrying once when the credential is rejected), lets the client in
// with upstream's OK, and relays. A COM_CHANGE_USER from the client re-authenticates the same
// upstream session with the stored credential.
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { MysqlTargetConfig } from '../../config/schema.ts';
import type { Credential } from '../../credentials/types.ts';
import { KeylessError, asKeylessError } from '../../errors.ts';
import type { Logger } from '../../observability/logger.ts';
import type { ConnectionContext, ProtocolHandler, Route, Target } from '../types.ts';
import { Com, MAX_CLIENT_HANDSHAKE_PACKET, RELAYED_CAPS } from './constants.ts';
import { toErrPacket } from './errors.ts';
import { clientGreeting, clientWelcome, readClientHello, type ClientHello } from './frontend.ts';
import { PacketReader, encodePacket, nextSeq } from './packet.ts';
import { relay } from './relay.ts';
import { changeUser, greet, login, type Greeted, type LoginParams, type UpstreamEndpoint, type UpstreamSession } from './upstream.ts';
import { WireError, decodeChangeUser } from './wire.ts';

const FOREVER = 2 ** 31 - 1;

/** An abort signal that fires after `ms` (0: never) with a KeylessError reason; `clear()` when done. */
function deadline(ms: number, error: () => KeylessError): { signal: AbortSignal; clear(): void } {
  const c = new AbortController();
  if (ms <= 0) return { signal: c.signal, clear: () => undefined };
  const t = setTimeout(() => c.abort(error()), Math.min(ms, FOREVER));
  t.unref();
  return { signal: c.signal, clear: () => clearTimeout(t) };
}

export class MysqlHandler implements ProtocolHandler {
  readonly protocol = 'mysql' as const;
  readonly #log: Logger;
  /** Upstream endpoints (with CA and key files read once) per target config object. */
  readonly #endpoints = new WeakMap<MysqlTargetConfig, UpstreamEndpoint>();

  constructor(log: Logger) {
    this.#log = log;
  }

  async handle(client: Socket, route: Route, ctx: ConnectionContext): Promise<void> {
    let socket: Socket | TLSSocket = client;
    let target: Target | undefined;
    let greeted: Greeted | undefined;
    let session: UpstreamSession | undefined;
    /** Sequence id for an ERR to the client, and whether it may carry a SQLSTATE. */
    let errSeq = 0;
    let protocol41 = false;
    const handshake = deadline(route.handshakeMs, () => new KeylessError('KL_ERR_HANDSHAKE_TIMEOUT', 'client did not complete the handshake in time'));
    const clientSignal = AbortSignal.any([ctx.signal, handshake.signal]);
    const timers: (() => void)[] = [handshake.clear];
    try {
      // A listener with one target knows it now; a shared one after the client names a schema.
      const only = route.resolve(undefined);
      const first = only ?? route.targets?.[0];
      if (!first) throw new KeylessError('KL_ERR_CONFIG', `listener ${route.listen} has no target to greet with`);
      if (only) {
        target = only;
        admit(target, ctx);
      }
      const firstCfg = first.config as MysqlTargetConfig;
      const ep = this.#endpoint(first.name, firstCfg);

      const connect = deadline(firstCfg.timeouts.connect, () => new KeylessError('KL_ERR_UPSTREAM_TIMEOUT', `upstream ${ep.host}:${ep.port} did not greet in time`));
      timers.push(connect.clear);
      greeted = await greet(ep, AbortSignal.any([clientSignal, connect.signal]));
      connect.clear();
      const greeting = clientGreeting(greeted.greeting, route.tls !== undefined);
      errSeq = 1;
      const hello = await readClientHello(client, greeting, route.tls, clientSignal);
      socket = hello.socket;
      errSeq = hello.seq;
      protocol41 = true;
      if (!target) {
        const schema = hello.response.database;
        const routed = route.resolve(schema);
        if (!routed) {
          throw new KeylessError('KL_ERR_UNKNOWN_TARGET', `no target routes schema "${schema ?? ''}" on ${route.listen}`, { clientDetail: JSON.stringify(schema ?? '') });
        }
        target = routed;
        admit(target, ctx);
      }
      handshake.clear();

      const cfg = target.config as MysqlTargetConfig;
      const endpoint = this.#endpoint(target.name, cfg);
      const params: LoginParams = {
        capabilities: (hello.response.capabilities & greeting.capabilities) >>> 0,
        mariadbCapabilities: hello.response.mariadbCapabilities & greeting.mariadbCapabilities,
        maxPacketSize: hello.response.maxPacketSize,
        charset: hello.response.charset,
        database: cfg.upstream.database ?? hello.response.database,
        attributes: hello.response.attributes,
      };
      session = await this.#login(target, endpoint, greeted, params, ctx);
      greeted = undefined;

      socket.write(clientWelcome(hello, session.ok));
      const fromClient = hello.reader.detach();
      if (session.leftover.length > 0) {
        socket.write(session.leftover);
        session.leftover = Buffer.alloc(0);
      }
      const live = session;
      const bound = target;
      const rawUp = session.raw;
      ctx.relaying({ fromClient: () => client.bytesRead, fromUpstream: () => rawUp.bytesRead });
      const name = target.name;
      await relay(socket, session.socket, fromClient, {
        idleMs: cfg.timeouts.idle,
        log: ctx.log,
        signal: ctx.signal,
        // Unsolicited, as MySQL 8 does on wait_timeout: drivers report it on their next read.
        farewell: (why) =>
          encodePacket(
            0,
            toErrPacket(
              why === 'idle'
                ? new KeylessError('KL_ERR_IDLE_TIMEOUT', 'idle timeout')
                : ctx.signal.reason instanceof KeylessError
                  ? ctx.signal.reason
                  : new KeylessError('KL_ERR_SHUTTING_DOWN', 'drain deadline passed'),
              name,
              true,
            ),
          ),
        onChangeUser: (initial) => this.#changeUser(initial, hello, live, bound, route, ctx),
      });
    } catch (err) {
      const e = asKeylessError(err, 'KL_ERR_PROTOCOL', `client: ${(err as Error)?.message ?? String(err)}`);
      if (e.code === 'KL_ERR_UPSTREAM_AUTH') ctx.metrics.upstreamAuthFailures.inc({ target: target?.name ?? route.listen, reason: 'rejected' });
      if (e.code === 'KL_ERR_UPSTREAM_AUTH_METHOD') ctx.metrics.upstreamAuthFailures.inc({ target: target?.name ?? route.listen, reason: 'unsupported_method' });
      ctx.failed(e);
      if (e.code !== 'KL_ERR_CLIENT_CLOSED' && !socket.destroyed && socket.writable) {
        await new Promise<void>((resolve) => socket.end(encodePacket(errSeq, toErrPacket(e, target?.name, protocol41)), resolve));
      }
    } finally {
      for (const clear of timers) clear();
      greeted?.reader.detach();
      greeted?.raw.destroy();
      session?.socket.destroy();
      socket.destroy();
    }
  }

  /** Log in on the greeted connection; on a rejected credential, refetch once and log in anew. */
  async #login(target: Target, ep: UpstreamEndpoint, greeted: Greeted, params: LoginParams, ctx: ConnectionContext): Promise<UpstreamSession> {
    const cfg = target.config as MysqlTargetConfig;
    const attempt = async (g: Greeted, cred: Credential): Promise<UpstreamSession> => {
      const limit = deadline(cfg.timeouts.connect, () => new KeylessError('KL_ERR_UPSTREAM_TIMEOUT', `upstream ${ep.host}:${ep.port} did not complete the login in time`));
      try {
        const s = await login(g, ep, params, cred, AbortSignal.any([ctx.signal, limit.signal]));
        ctx.log.debug({ version: cred.version, tls: s.tls, connectionId: s.greeting.connectionId }, 'upstream login ok');
        return s;
      } finally {
        limit.clear();
      }
    };
    let cred = await ctx.credentials();
    try {
      return await attempt(greeted, cred);
    } catch (err) {
      if (!(err instanceof KeylessError) || err.code !== 'KL_ERR_UPSTREAM_AUTH') throw err;
      ctx.metrics.upstreamAuthFailures.inc({ target: target.name, reason: 'rejected_retrying' });
      ctx.log.warn({ version: cred.version, err: err.message }, 'upstream rejected the credential; refetching once');
      cred = await ctx.credentials(cred);
      // The server closes a connection after a failed login, so the retry needs a new one; the
      // client already has the first one's id, which now names no session (ids are not reused).
      const limit = deadline(cfg.timeouts.connect, () => new KeylessError('KL_ERR_UPSTREAM_TIMEOUT', `upstream ${ep.host}:${ep.port} did not greet in time`));
      let again: Greeted;
      try {
        again = await greet(ep, AbortSignal.any([ctx.signal, limit.signal]));
      } finally {
        limit.clear();
      }
      ctx.log.warn(
        { announcedConnectionId: greeted.greeting.connectionId, connectionId: again.greeting.connectionId },
        'retrying on a new upstream connection; KILL with the announced connection id will not reach this session',
      );
      return attempt(again, cred);
    }
  }

  /**
   * Answer the client's COM_CHANGE_USER: re-authenticate the same upstream session as the stored
   * credential (refetching once if it is rejected) and pass upstream's OK on, or answer ERR.
   */
  async #changeUser(initial: Buffer, hello: ClientHello, session: UpstreamSession, target: Target, route: Route, ctx: ConnectionContext): Promise<Buffer> {
    const cfg = target.config as MysqlTargetConfig;
    const ep = this.#endpoint(target.name, cfg);
    const reader = new PacketReader(hello.socket, 'client', initial);
    const limit = deadline(cfg.timeouts.handshake, () => new KeylessError('KL_ERR_HANDSHAKE_TIMEOUT', 'client did not complete COM_CHANGE_USER in time'));
    try {
      const p = await reader.read(MAX_CLIENT_HANDSHAKE_PACKET, AbortSignal.any([ctx.signal, limit.signal]));
      const seq = nextSeq(p);
      let cu;
      try {
        cu = decodeChangeUser(p.payload, hello.response.capabilities);
      } catch (err) {
        if (err instanceof WireError) throw new KeylessError('KL_ERR_PROTOCOL', `client: malformed COM_CHANGE_USER: ${err.message}`, { cause: err });
        throw err;
      }
      try {
        const routed = route.resolve(cu.database === '' ? undefined : cu.database);
        if (routed !== target && route.resolve(undefined) !== target) {
          throw new KeylessError('KL_ERR_UNKNOWN_TARGET', `COM_CHANGE_USER to schema "${cu.database}", which target ${target.name} does not serve`, {
            clientDetail: `${JSON.stringify(cu.database)} on this connection (reconnect to change targets)`,
          });
        }
        const params = { database: cfg.upstream.database ?? cu.database, charset: cu.charset, attributes: cu.attributes };
        const run = async (cred: Credential): Promise<Buffer> => {
          const up = deadline(cfg.timeouts.connect, () => new KeylessError('KL_ERR_UPSTREAM_TIMEOUT', 'upstream did not answer COM_CHANGE_USER in time'));
          try {
            return await changeUser(session, ep, params, cred, AbortSignal.any([ctx.signal, up.signal]));
          } finally {
            up.clear();
          }
        };
        let cred = await ctx.credentials();
        let ok: Buffer;
        try {
          ok = await run(cred);
        } catch (err) {
          if (!(err instanceof KeylessError) || err.code !== 'KL_ERR_UPSTREAM_AUTH') throw err;
          ctx.metrics.upstreamAuthFailures.inc({ target: target.name, reason: 'rejected_retrying' });
          ctx.log.warn({ version: cred.version, err: err.message }, 'upstream rejected the credential on COM_CHANGE_USER; refetching once');
          // The server keeps the connection after a failed COM_CHANGE_USER: same session, same id.
          cred = await ctx.credentials(cred);
          ok = await run(cred);
        }
        ctx.log.debug({ version: cred.version }, 'COM_CHANGE_USER re-authenticated upstream');
        hello.socket.write(encodePacket(seq, ok));
      } catch (err) {
        const e = asKeylessError(err, 'KL_ERR_UPSTREAM_PROTOCOL', `COM_CHANGE_USER: ${(err as Error)?.message ?? String(err)}`);
        // A broken upstream or client ends the connection; anything else is this command's ERR.
        if (e.code === 'KL_ERR_UPSTREAM_CLOSED' || e.code === 'KL_ERR_UPSTREAM_PROTOCOL' || e.code === 'KL_ERR_SHUTTING_DOWN' || e.code === 'KL_ERR_UPSTREAM_TIMEOUT') throw e;
        if (e.code === 'KL_ERR_UPSTREAM_AUTH') ctx.metrics.upstreamAuthFailures.inc({ target: target.name, reason: 'rejected' });
        ctx.log.warn({ code: e.code, err: e.message }, 'COM_CHANGE_USER failed');
        hello.socket.write(encodePacket(seq, toErrPacket(e, target.name, true)));
      }
      if (session.leftover.length > 0) {
        hello.socket.write(session.leftover);
        session.leftover = Buffer.alloc(0);
      }
      return reader.detach();
    } catch (err) {
      reader.detach();
      throw err;
    } finally {
      limit.clear();
    }
  }

  async check(target: Target, cred: Credential, signal: AbortSignal): Promise<string> {
    const cfg = target.config as MysqlTargetConfig;
    const ep = this.#endpoint(target.name, cfg);
    const g = await greet(ep, signal);
    const database = cfg.upstream.database ?? cfg.route?.database;
    const session = await login(
      g,
      ep,
      {
        capabilities: (g.greeting.capabilities & RELAYED_CAPS) >>> 0,
        mariadbCapabilities: 0,
        maxPacketSize: 0xff_ffff,
        charset: g.greeting.charset,
        database,
        attributes: undefined,
      },
      cred,
      signal,
    );
    session.socket.end(encodePacket(0, Buffer.from([Com.QUIT])));
    const user = cred.fields.get('username')?.reveal() ?? '';
    return `logged in as ${user}${database ? ` to ${database}` : ''} (${g.greeting.serverVersion}${session.tls ? `, TLS ${cfg.upstream.tls.mode}` : ', no TLS'})`;
  }

  #endpoint(name: string, cfg: MysqlTargetConfig): UpstreamEndpoint {
    let ep = this.#endpoints.get(cfg);
    if (!ep) {
      const t = cfg.upstream.tls;
      ep = {
        target: name,
        host: cfg.upstream.host,
        port: cfg.upstream.port,
        tls: { mode: t.mode, ca: t.ca ? readConfigFile(name, 'upstream.tls.ca', t.ca) : undefined, servername: t.servername },
        serverPublicKey: cfg.upstream.serverPublicKey ? readConfigFile(name, 'upstream.serverPublicKey', cfg.upstream.serverPublicKey) : undefined,
        fetchServerPublicKey: cfg.upstream.fetchServerPublicKey,
      };
      this.#endpoints.set(cfg, ep);
    }
    return ep;
  }

  async close(): Promise<void> {
    this.#log.debug('mysql handler closed');
  }
}

function admit(target: Target, ctx: ConnectionContext): void {
  ctx.bind(target);
  const refused = ctx.admit();
  if (refused) throw refused;
}

function readConfigFile(target: string, field: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new KeylessError('KL_ERR_CONFIG', `targets.${target}.${field}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
}
