// A small MySQL-protocol server implementing the SERVER side of caching_sha2_password, for tests:
// MariaDB (on this machine) lacks the plugin and no MySQL 8 server can be installed here.
// Built from the MySQL client/server protocol docs: Handshake v10, HandshakeResponse41,
// SSLRequest, AuthSwitchRequest, AuthMoreData, and page_caching_sha2_authentication_exchanges
// (fast path, full authentication over TLS as cleartext, and over plaintext via the RSA public
// key (request 0x02) with RSA-OAEP(password XOR nonce)).
//
// What it models of a real MySQL 8 server:
// - the in-memory cache of SHA256(SHA256(password)) per account: filled by a successful full
//   authentication (or seeded), emptied per account when its password changes and wholly by
//   flushAuthCache() (FLUSH PRIVILEGES);
// - fast auth only on a cache hit that matches; any other scramble gets "perform full
//   authentication" (0x04) and the verdict of full authentication;
// - AuthSwitchRequest to caching_sha2_password: when the client answered the handshake with another
//   plugin (same nonce: MySQL re-sends the handshake's scramble, the client's data being useless);
//   when the handshake advertised mysql_native_password (the account's plugin restarts: a fresh
//   nonce); and on every COM_CHANGE_USER (fresh nonce; the command's own auth data is ignored);
// - REQUIRE SSL accounts are refused (1045) after authentication when the transport is plaintext;
// - packet sequence ids are checked (1156 "Got packets out of order").
// After authentication: COM_QUIT, COM_PING, COM_INIT_DB, COM_RESET_CONNECTION, COM_CHANGE_USER,
// and COM_QUERY for a few SELECTs (see caching-sha2-queries.ts); every other command gets ERR 1047.
//
// It never logs, and nothing it exposes (stats, connection info, errors) holds a password.
//
// Usage:
//   await using s = await startCachingSha2Server({
//     users: { app: 'canary-…', ssl_only: { password: 'canary-…', requireTls: true }, warm: { password: 'canary-…', cached: true } },
//     tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile },   // optional: offers CLIENT_SSL
//   });
//   mysql2: { host: '127.0.0.1', port: s.port, user: 'app', password, ssl: { ca } }
//   s.authStats('app')      → { fast, full, fullTls, fullRsa, publicKeyRequests, switched, denied }
//   s.connection(threadId)  → { tls, authPath, clientPlugin, switchedPlugin, user, database, … }
//   s.setPassword('app', next); s.flushAuthCache(); s.seedAuthCache('app'); s.publicKeyPem
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createSecureContext, TLSSocket, type SecureContext } from 'node:tls';
import { decryptRsaPassword, generateNonce, generateRsaKeyPair, passwordHashEntry, passwordMatches, verifyFastScramble, type RsaKeyPair } from './caching-sha2-crypto.ts';
import {
  authMoreData,
  authSwitchRequest,
  Cap,
  Charset,
  columnDefinition41,
  Com,
  eofPacket,
  errPacket,
  framePacket,
  handshakeV10,
  isSslRequest,
  Marker,
  MalformedPacketError,
  okPacket,
  PacketReader,
  PacketTooLargeError,
  parseChangeUser,
  parseHandshakeResponse41,
  PayloadWriter,
  ServerStatus,
  Sha2,
  textRow,
  type ColumnDefinition,
  type Packet,
} from './caching-sha2-protocol.ts';
import { evaluateQuery } from './caching-sha2-queries.ts';

export const CACHING_SHA2_PASSWORD = 'caching_sha2_password';
export const MYSQL_NATIVE_PASSWORD = 'mysql_native_password';

/** What this server offers (plus SSL when it has a certificate). */
export const CACHING_SHA2_SERVER_CAPABILITIES =
  Cap.LONG_PASSWORD |
  Cap.FOUND_ROWS |
  Cap.LONG_FLAG |
  Cap.CONNECT_WITH_DB |
  Cap.NO_SCHEMA |
  Cap.ODBC |
  Cap.IGNORE_SPACE |
  Cap.PROTOCOL_41 |
  Cap.INTERACTIVE |
  Cap.IGNORE_SIGPIPE |
  Cap.TRANSACTIONS |
  Cap.RESERVED |
  Cap.SECURE_CONNECTION |
  Cap.MULTI_RESULTS |
  Cap.PS_MULTI_RESULTS |
  Cap.PLUGIN_AUTH |
  Cap.CONNECT_ATTRS |
  Cap.PLUGIN_AUTH_LENENC_CLIENT_DATA |
  Cap.CAN_HANDLE_EXPIRED_PASSWORDS |
  Cap.DEPRECATE_EOF;

export interface CachingSha2UserConfig {
  password: string;
  /** As `CREATE USER … REQUIRE SSL`: refused with 1045 over a plaintext connection. */
  requireTls?: boolean;
  /** Start with this account in the auth cache, as if it had already passed full authentication. */
  cached?: boolean;
}

export type CachingSha2TlsOptions = { cert: string | Buffer; key: string | Buffer } | { certFile: string; keyFile: string };

export interface CachingSha2ServerOptions {
  /** Accounts by name: a password, or the full config. */
  users: Record<string, string | CachingSha2UserConfig>;
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Certificate and key: the server then offers CLIENT_SSL and upgrades on SSLRequest. */
  tls?: CachingSha2TlsOptions;
  /** Plugin named in the initial handshake (default caching_sha2_password). */
  handshakePlugin?: typeof CACHING_SHA2_PASSWORD | typeof MYSQL_NATIVE_PASSWORD;
  serverVersion?: string;
  versionComment?: string;
  /** Connection id given to the first connection; later ones count up (default: random). */
  firstConnectionId?: number;
  /** Reuse a key pair (e.g. across servers in one file); one is generated otherwise. */
  rsaKeyPair?: RsaKeyPair;
  /** If set, a database outside this list is refused with 1049 (handshake and COM_INIT_DB). */
  databases?: string[];
  /** Capability bits to withhold from the handshake (e.g. Cap.DEPRECATE_EOF). */
  withoutCapabilities?: number;
}

/** Per-account authentication counters. Counts are of successes unless named otherwise. */
export interface AuthStats {
  /** Fast-path successes (AuthMoreData 0x03). */
  fast: number;
  /** Full-authentication successes, over either transport. */
  full: number;
  fullTls: number;
  fullRsa: number;
  /** Times a client asked for the RSA public key (0x02). */
  publicKeyRequests: number;
  /** AuthSwitchRequests sent (see ConnectionInfo.switchedPlugin for when). */
  switched: number;
  /** ERR 1045 sent. */
  denied: number;
}

export type AuthPath = 'fast' | 'full-tls' | 'full-rsa' | 'empty-password';

export interface ConnectionInfo {
  readonly id: number;
  readonly remoteAddress: string;
  state: 'handshake' | 'authenticating' | 'ready' | 'closed';
  tls: boolean;
  /** Account name the client asked for (set once its handshake response is read). */
  user?: string;
  database?: string;
  /** Client capability flags as sent, and as negotiated (client ∩ server). */
  clientFlags?: number;
  capabilities?: number;
  /** Plugin named in the client's handshake response (undefined without CLIENT_PLUGIN_AUTH). */
  clientPlugin?: string;
  /**
   * Whether the server sent an AuthSwitchRequest to caching_sha2_password (the client answered
   * with another plugin, the handshake advertised mysql_native_password, or COM_CHANGE_USER).
   */
  switchedPlugin: boolean;
  publicKeyRequested: boolean;
  authPath?: AuthPath;
  attributes: Record<string, string>;
  /** Errors sent to this client (code and message; never holds a secret). */
  errors: Array<{ code: number; sqlState: string; message: string }>;
  /** Command bytes received after authentication, in order. */
  commands: number[];
}

export interface CachingSha2Server {
  readonly host: string;
  readonly port: number;
  /** The RSA public key (SPKI PEM) the server hands out on request (0x02); pin it in clients. */
  readonly publicKeyPem: string;
  readonly rsaKeyPair: RsaKeyPair;
  readonly tls: boolean;
  addUser(name: string, config: string | CachingSha2UserConfig): void;
  removeUser(name: string): void;
  /** ALTER USER … IDENTIFIED BY: the new password applies to the next authentication; evicts the cache entry. */
  setPassword(name: string, password: string): void;
  setRequireTls(name: string, requireTls: boolean): void;
  /** FLUSH PRIVILEGES: every account needs full authentication again. */
  flushAuthCache(): void;
  /** Put an account's current password in the cache, as after a full authentication. */
  seedAuthCache(name: string): void;
  isCached(name: string): boolean;
  /** Counters for one account (zeros if it never tried). */
  authStats(name: string): AuthStats;
  resetAuthStats(): void;
  connection(id: number): ConnectionInfo | undefined;
  /** Every connection this server has accepted, oldest first, closed ones included. */
  connections(): ConnectionInfo[];
  /** Resolves once connection `id` is closed on the server side. */
  waitForClose(id: number): Promise<void>;
  /** Drop a connection from the server side (as KILL CONNECTION from another session). */
  kill(id: number): void;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

interface Account {
  password: string;
  requireTls: boolean;
}

class ProtocolError extends Error {
  readonly errCode: number;
  readonly sqlState: string;
  constructor(errCode: number, sqlState: string, message: string) {
    super(message);
    this.errCode = errCode;
    this.sqlState = sqlState;
  }
}

const NUL = Buffer.from([0]);

function emptyStats(): AuthStats {
  return { fast: 0, full: 0, fullTls: 0, fullRsa: 0, publicKeyRequests: 0, switched: 0, denied: 0 };
}

function normalizeUser(config: string | CachingSha2UserConfig): CachingSha2UserConfig {
  return typeof config === 'string' ? { password: config } : config;
}

function secureContextFrom(tls: CachingSha2TlsOptions): SecureContext {
  return 'certFile' in tls ? createSecureContext({ cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) }) : createSecureContext({ cert: tls.cert, key: tls.key });
}

/** Shared state the per-connection sessions work on. */
class ServerState {
  readonly accounts = new Map<string, Account>();
  readonly cache = new Map<string, Buffer>();
  readonly stats = new Map<string, AuthStats>();
  readonly connections = new Map<number, ConnectionInfo>();
  readonly closeWaiters = new Map<number, Promise<void>>();
  readonly sessions = new Map<number, Session>();
  readonly options: Required<Pick<CachingSha2ServerOptions, 'serverVersion' | 'versionComment' | 'handshakePlugin'>> & CachingSha2ServerOptions;
  readonly keys: RsaKeyPair;
  readonly secureContext: SecureContext | undefined;
  readonly capabilities: number;
  nextConnectionId: number;

  constructor(options: CachingSha2ServerOptions, keys: RsaKeyPair) {
    this.options = {
      serverVersion: '8.0.36-keyless-test',
      versionComment: 'Keyless caching_sha2_password test server',
      handshakePlugin: CACHING_SHA2_PASSWORD,
      ...options,
    };
    this.keys = keys;
    this.secureContext = options.tls ? secureContextFrom(options.tls) : undefined;
    this.capabilities = (CACHING_SHA2_SERVER_CAPABILITIES | (this.secureContext ? Cap.SSL : 0)) & ~(options.withoutCapabilities ?? 0);
    this.nextConnectionId = options.firstConnectionId ?? randomInt(10_000, 1_000_000);
  }

  statsFor(user: string): AuthStats {
    let s = this.stats.get(user);
    if (!s) {
      s = emptyStats();
      this.stats.set(user, s);
    }
    return s;
  }

  knowsDatabase(db: string): boolean {
    return !this.options.databases || this.options.databases.includes(db);
  }
}

type AuthOutcome = { ok: true } | { ok: false };

/** One client connection: handshake, authentication, then commands. */
class Session {
  readonly #state: ServerState;
  readonly #raw: Socket;
  readonly info: ConnectionInfo;
  /** The nonce the client's current answer must be computed with. */
  #nonce = generateNonce();
  #stream: Duplex;
  #reader: PacketReader;
  /** Last sequence id sent or received. */
  #seq = 0xff;

  constructor(state: ServerState, socket: Socket, id: number) {
    this.#state = state;
    this.#raw = socket;
    this.#stream = socket;
    this.#reader = new PacketReader(socket);
    this.info = {
      id,
      remoteAddress: (socket.remoteAddress ?? 'unknown').replace(/^::ffff:/, ''),
      state: 'handshake',
      tls: false,
      switchedPlugin: false,
      publicKeyRequested: false,
      attributes: {},
      errors: [],
      commands: [],
    };
  }

  destroy(): void {
    this.#stream.destroy();
    this.#raw.destroy();
  }

  async run(): Promise<void> {
    try {
      if (await this.#connectionPhase()) await this.#commandPhase();
    } catch (err) {
      if (err instanceof ProtocolError) this.#fatal(err.errCode, err.sqlState, err.message);
      else if (err instanceof MalformedPacketError) this.#fatal(this.info.state === 'ready' ? 1047 : 1043, '08S01', this.info.state === 'ready' ? 'Unknown command' : 'Bad handshake');
      else if (err instanceof PacketTooLargeError) this.#fatal(1153, '08S01', "Got a packet bigger than 'max_allowed_packet' bytes");
      else this.destroy(); // peer gone, TLS failure, …: nothing more to say
    }
  }

  // ---- packets ---------------------------------------------------------------------------

  #send(payload: Buffer): void {
    const { bytes, lastSeq } = framePacket((this.#seq + 1) & 0xff, payload);
    this.#seq = lastSeq;
    this.#stream.write(bytes);
  }

  async #read(): Promise<Packet> {
    const packet = await this.#reader.read();
    if (packet.seq !== ((this.#seq + 1) & 0xff)) throw new ProtocolError(1156, '08S01', 'Got packets out of order');
    this.#seq = packet.lastSeq;
    return packet;
  }

  #sendError(code: number, sqlState: string, message: string): void {
    this.info.errors.push({ code, sqlState, message });
    this.#send(errPacket(code, sqlState, message));
  }

  /** Send an ERR and close. */
  #fatal(code: number, sqlState: string, message: string): void {
    if (!this.#stream.writable) return this.destroy();
    this.#sendError(code, sqlState, message);
    this.#stream.end();
  }

  // ---- connection phase --------------------------------------------------------------------

  async #connectionPhase(): Promise<boolean> {
    const state = this.#state;
    this.#send(
      handshakeV10({
        serverVersion: state.options.serverVersion,
        connectionId: this.info.id,
        scramble: this.#nonce,
        capabilities: state.capabilities,
        charset: Charset.UTF8MB4_0900_AI_CI,
        statusFlags: ServerStatus.AUTOCOMMIT,
        authPluginName: state.options.handshakePlugin,
      }),
    );
    let packet = await this.#read();
    if (isSslRequest(packet.payload)) {
      if (!state.secureContext) throw new ProtocolError(1043, '08S01', 'Bad handshake');
      await this.#upgradeToTls();
      packet = await this.#read();
    }
    const response = parseHandshakeResponse41(packet.payload, state.capabilities);
    this.info.state = 'authenticating';
    this.info.user = response.user;
    this.info.clientFlags = response.clientFlags;
    this.info.capabilities = response.clientFlags & state.capabilities;
    this.info.clientPlugin = response.authPluginName;
    this.info.attributes = response.attributes;
    // Without CLIENT_PLUGIN_AUTH a 4.1 client has answered with mysql_native_password.
    const outcome = await this.#authenticate(response.user, response.authResponse, response.authPluginName ?? MYSQL_NATIVE_PASSWORD, 'handshake');
    if (!outcome.ok) return false;
    if (response.database !== undefined && !state.knowsDatabase(response.database)) {
      this.#fatal(1049, '42000', `Unknown database '${response.database}'`);
      return false;
    }
    this.info.database = response.database;
    this.info.state = 'ready';
    this.#send(okPacket({ header: Marker.OK }));
    return true;
  }

  async #upgradeToTls(): Promise<void> {
    // The client may have sent its ClientHello right behind the SSLRequest: hand those bytes to
    // TLS (TLSSocket reads what is already buffered on the socket it wraps).
    const leftover = this.#reader.detach();
    this.#raw.pause();
    if (leftover.length > 0) this.#raw.unshift(leftover);
    const tlsSocket = new TLSSocket(this.#raw, { isServer: true, secureContext: this.#state.secureContext! });
    tlsSocket.on('error', () => tlsSocket.destroy());
    this.#stream = tlsSocket;
    this.#reader = new PacketReader(tlsSocket);
    this.info.tls = true;
  }

  /**
   * caching_sha2_password, server side. `initialResponse` is what the client sent with
   * `clientPlugin` in its handshake response or COM_CHANGE_USER.
   */
  async #authenticate(user: string, initialResponse: Buffer, clientPlugin: string, command: 'handshake' | 'change-user'): Promise<AuthOutcome> {
    const state = this.#state;
    const stats = state.statsFor(user);
    let response = initialResponse;
    // The plugin that ran first (the handshake's) is not caching_sha2_password: it restarts, with
    // a nonce of its own. So does COM_CHANGE_USER (MySQL answers it with an AuthSwitchRequest).
    const restart = command === 'change-user' || state.options.handshakePlugin !== CACHING_SHA2_PASSWORD;
    if (restart || clientPlugin !== CACHING_SHA2_PASSWORD) {
      if (restart) this.#nonce = generateNonce();
      this.info.switchedPlugin = true;
      stats.switched++;
      this.#send(authSwitchRequest(CACHING_SHA2_PASSWORD, Buffer.concat([this.#nonce, NUL])));
      response = (await this.#read()).payload;
    }
    const account = state.accounts.get(user);
    const deny = (usingPassword: boolean): AuthOutcome => {
      stats.denied++;
      this.#fatal(1045, '28000', `Access denied for user '${user}'@'${this.info.remoteAddress}' (using password: ${usingPassword ? 'YES' : 'NO'})`);
      return { ok: false };
    };

    if (response.length === 0) {
      // An empty scramble is the client's way of saying "no password".
      if (!account || account.password !== '') return deny(false);
      this.info.authPath = 'empty-password';
    } else {
      const entry = state.cache.get(user);
      if (account && entry && verifyFastScramble(response, this.#nonce, entry)) {
        this.#send(authMoreData(Buffer.from([Sha2.FAST_AUTH_SUCCESS])));
        stats.fast++;
        this.info.authPath = 'fast';
      } else {
        this.#send(authMoreData(Buffer.from([Sha2.PERFORM_FULL_AUTHENTICATION])));
        const candidate = await this.#fullAuthentication(stats);
        if (!account || !candidate || !passwordMatches(candidate, account.password)) return deny(true);
        state.cache.set(user, passwordHashEntry(account.password));
        stats.full++;
        if (this.info.tls) stats.fullTls++;
        else stats.fullRsa++;
        this.info.authPath = this.info.tls ? 'full-tls' : 'full-rsa';
      }
    }
    if (!account) return deny(true); // (every path above that gets here has an account)
    // Account requirements are checked after the plugin has accepted the password, as MySQL does.
    if (account.requireTls && !this.info.tls) return deny(true);
    return { ok: true };
  }

  /** The client's password (without NUL) from the full-authentication step, or null. */
  async #fullAuthentication(stats: AuthStats): Promise<Buffer | null> {
    let payload = (await this.#read()).payload;
    if (this.info.tls) {
      // Over TLS the client sends the password in the clear, NUL-terminated.
      if (payload.length === 0 || payload.readUInt8(payload.length - 1) !== 0) return null;
      return payload.subarray(0, payload.length - 1);
    }
    if (payload.length === 1 && payload.readUInt8(0) === Sha2.REQUEST_PUBLIC_KEY) {
      stats.publicKeyRequests++;
      this.info.publicKeyRequested = true;
      this.#send(authMoreData(Buffer.from(this.#state.keys.publicKeyPem, 'latin1')));
      payload = (await this.#read()).payload;
    }
    // Anything but a ciphertext of exactly the modulus size (a cleartext password, say) is refused.
    if (payload.length !== this.#state.keys.modulusBytes) return null;
    return decryptRsaPassword(payload, this.#state.keys.privateKey, this.#nonce);
  }

  // ---- command phase -----------------------------------------------------------------------

  async #commandPhase(): Promise<void> {
    for (;;) {
      this.#seq = 0xff; // every command starts a new sequence at 0
      const packet = await this.#read();
      const payload = packet.payload;
      if (payload.length === 0) throw new MalformedPacketError('empty command');
      const command = payload.readUInt8(0);
      this.info.commands.push(command);
      switch (command) {
        case Com.QUIT:
          this.#stream.end();
          return;
        case Com.PING:
        case Com.RESET_CONNECTION:
          this.#send(okPacket());
          break;
        case Com.INIT_DB: {
          const db = payload.subarray(1).toString('utf8');
          if (!this.#state.knowsDatabase(db)) this.#sendError(1049, '42000', `Unknown database '${db}'`);
          else {
            this.info.database = db;
            this.#send(okPacket());
          }
          break;
        }
        case Com.QUERY:
          this.#query(payload.subarray(1).toString('utf8'));
          break;
        case Com.CHANGE_USER:
          if (!(await this.#changeUser(payload))) return;
          break;
        default:
          this.#sendError(1047, '08S01', 'Unknown command');
      }
    }
  }

  #query(sql: string): void {
    const result = evaluateQuery(sql, {
      user: this.info.user ?? '',
      host: this.info.remoteAddress,
      connectionId: this.info.id,
      database: this.info.database,
      serverVersion: this.#state.options.serverVersion,
      versionComment: this.#state.options.versionComment,
    });
    if (result.kind === 'error') this.#sendError(result.code, result.sqlState, result.message);
    else this.#sendResultset(result.columns, result.rows);
  }

  /** Text resultset: column count, definitions, [EOF], rows, then EOF — or OK(0xfe) under DEPRECATE_EOF. */
  #sendResultset(columns: ColumnDefinition[], rows: ReadonlyArray<ReadonlyArray<string | null>>): void {
    const deprecateEof = ((this.info.capabilities ?? 0) & Cap.DEPRECATE_EOF) !== 0;
    this.#stream.cork();
    this.#send(new PayloadWriter().lenencInt(columns.length).toBuffer());
    for (const c of columns) this.#send(columnDefinition41({ ...c, schema: this.info.database ?? '' }));
    if (!deprecateEof) this.#send(eofPacket());
    for (const row of rows) this.#send(textRow(row));
    this.#send(deprecateEof ? okPacket({ header: Marker.EOF }) : eofPacket());
    this.#stream.uncork();
  }

  /** COM_CHANGE_USER: authenticate again on this connection (AuthSwitchRequest, fresh nonce); a failure closes it. */
  async #changeUser(payload: Buffer): Promise<boolean> {
    const request = parseChangeUser(payload, this.info.capabilities ?? 0);
    this.info.state = 'authenticating';
    this.info.user = request.user;
    this.info.clientPlugin = request.authPluginName;
    this.info.switchedPlugin = false;
    this.info.publicKeyRequested = false;
    this.info.database = undefined;
    if (Object.keys(request.attributes).length > 0) this.info.attributes = request.attributes;
    const outcome = await this.#authenticate(request.user, request.authResponse, request.authPluginName ?? MYSQL_NATIVE_PASSWORD, 'change-user');
    if (!outcome.ok) return false;
    if (request.database !== undefined && !this.#state.knowsDatabase(request.database)) {
      this.#fatal(1049, '42000', `Unknown database '${request.database}'`);
      return false;
    }
    this.info.database = request.database;
    this.info.state = 'ready';
    this.#send(okPacket());
    return true;
  }
}

export async function startCachingSha2Server(options: CachingSha2ServerOptions): Promise<CachingSha2Server> {
  const keys = options.rsaKeyPair ?? (await generateRsaKeyPair());
  const state = new ServerState(options, keys);
  const addUser = (name: string, config: string | CachingSha2UserConfig): void => {
    const c = normalizeUser(config);
    state.accounts.set(name, { password: c.password, requireTls: c.requireTls ?? false });
    if (c.cached) state.cache.set(name, passwordHashEntry(c.password));
    else state.cache.delete(name);
  };
  for (const [name, config] of Object.entries(options.users)) addUser(name, config);

  const server: Server = createServer((socket) => {
    const id = state.nextConnectionId;
    state.nextConnectionId = (state.nextConnectionId + 1) >>> 0 || 1;
    socket.on('error', () => {}); // a reset peer must not take the test process down
    socket.setNoDelay(true);
    const session = new Session(state, socket, id);
    state.connections.set(id, session.info);
    state.sessions.set(id, session);
    state.closeWaiters.set(
      id,
      new Promise<void>((resolve) =>
        socket.once('close', () => {
          session.info.state = 'closed';
          state.sessions.delete(id);
          resolve();
        }),
      ),
    );
    void session.run();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of state.sessions.values()) s.destroy();
    });
    return closing;
  };

  const account = (name: string): Account => {
    const a = state.accounts.get(name);
    if (!a) throw new Error(`caching_sha2 test server: no user '${name}'`);
    return a;
  };

  return {
    host: address.address,
    port: address.port,
    publicKeyPem: keys.publicKeyPem,
    rsaKeyPair: keys,
    tls: state.secureContext !== undefined,
    addUser,
    removeUser(name) {
      state.accounts.delete(name);
      state.cache.delete(name);
    },
    setPassword(name, password) {
      account(name).password = password;
      state.cache.delete(name);
    },
    setRequireTls(name, requireTls) {
      account(name).requireTls = requireTls;
    },
    flushAuthCache() {
      state.cache.clear();
    },
    seedAuthCache(name) {
      state.cache.set(name, passwordHashEntry(account(name).password));
    },
    isCached: (name) => state.cache.has(name),
    authStats: (name) => ({ ...(state.stats.get(name) ?? emptyStats()) }),
    resetAuthStats() {
      state.stats.clear();
    },
    connection: (id) => state.connections.get(id),
    connections: () => [...state.connections.values()],
    waitForClose(id) {
      const w = state.closeWaiters.get(id);
      if (!w) return Promise.reject(new Error(`caching_sha2 test server: no connection ${id}`));
      return w;
    },
    kill(id) {
      state.sessions.get(id)?.destroy();
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

export { generateRsaKeyPair, type RsaKeyPair } from './caching-sha2-crypto.ts';
