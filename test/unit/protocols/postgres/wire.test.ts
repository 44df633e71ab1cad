import fc from 'fast-check';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import { Parser } from 'pg-protocol/dist/parser.js';
import { describe, expect, it } from 'vitest';
import {
  AUTHENTICATION_OK,
  Backend,
  MAX_STARTUP_PACKET,
  PROTOCOL_3_0,
  RequestCode,
  SSL_REQUEST,
  WireError,
  decodeErrorFields,
  decodeStartupPacket,
  encodeBackendKeyData,
  encodeCancelRequest,
  encodeErrorResponse,
  encodeNegotiateProtocolVersion,
  encodeParameterStatus,
  encodeReadyForQuery,
  encodeStartup,
} from '../../../../src/protocols/postgres/wire.ts';
import {
  CANCEL_REQUEST_CODE,
  GSSENC_REQUEST_CODE,
  SSL_REQUEST_CODE,
  authenticationOk,
  backendKeyData,
  bodyOf,
  cancelRequest,
  cstring,
  errorResponse,
  gssencRequest,
  int32,
  messageBody,
  negotiateProtocolVersion,
  parameterStatus,
  protocolVersion,
  readyForQuery,
  sslRequest,
  startupMessage,
  startupMessageBody,
} from '../../../support/packets/postgres.ts';

/** Decode backend messages with pg-protocol, an implementation independent of ours. */
function parseBackend(bytes: Buffer): BackendMessage[] {
  const out: BackendMessage[] = [];
  new Parser().parse(bytes, (m) => out.push(m));
  return out;
}

describe('constants', () => {
  it('request codes and protocol version are the documented numbers', () => {
    expect(RequestCode.SSL).toBe(SSL_REQUEST_CODE);
    expect(RequestCode.GSSENC).toBe(GSSENC_REQUEST_CODE);
    expect(RequestCode.Cancel).toBe(CANCEL_REQUEST_CODE);
    expect(PROTOCOL_3_0).toBe(protocolVersion(3, 0));
    expect(MAX_STARTUP_PACKET).toBe(10_000);
    expect(String.fromCharCode(Backend.ErrorResponse)).toBe('E');
    expect(String.fromCharCode(Backend.NegotiateProtocolVersion)).toBe('v');
  });
});

describe('decodeStartupPacket', () => {
  it('decodes SSLRequest', () => {
    expect(decodeStartupPacket(bodyOf(sslRequest()))).toEqual({ kind: 'ssl' });
  });

  it('decodes GSSENCRequest', () => {
    expect(decodeStartupPacket(bodyOf(gssencRequest()))).toEqual({ kind: 'gssenc' });
  });

  it('rejects SSLRequest and GSSENCRequest carrying a body', () => {
    expect(() => decodeStartupPacket(Buffer.concat([bodyOf(sslRequest()), Buffer.from([0])]))).toThrow(WireError);
    expect(() => decodeStartupPacket(Buffer.concat([bodyOf(gssencRequest()), int32(1)]))).toThrow(WireError);
  });

  it('decodes CancelRequest with a 4-byte key (protocol 3.0)', () => {
    const key = Buffer.from([0xde, 0xad, 0xbe, 0xef]);
    const p = decodeStartupPacket(bodyOf(cancelRequest(0x7fff_fffe, key)));
    expect(p).toEqual({ kind: 'cancel', processId: 0x7fff_fffe, secretKey: key });
  });

  it.each([5, 32, 256])('decodes CancelRequest with a %i-byte key (protocol 3.2)', (n) => {
    const key = Buffer.alloc(n, 0xab);
    key[n - 1] = 0x01;
    const p = decodeStartupPacket(bodyOf(cancelRequest(42, key)));
    expect(p).toEqual({ kind: 'cancel', processId: 42, secretKey: key });
  });

  it('copies the cancel key out of the input buffer', () => {
    const body = bodyOf(cancelRequest(7, Buffer.from([1, 2, 3, 4])));
    const p = decodeStartupPacket(body);
    body.fill(0);
    expect(p).toMatchObject({ secretKey: Buffer.from([1, 2, 3, 4]) });
  });

  it.each([
    ['no process id', Buffer.concat([int32(CANCEL_REQUEST_CODE)])],
    ['no key', Buffer.concat([int32(CANCEL_REQUEST_CODE), int32(1)])],
    ['a 3-byte key', Buffer.concat([int32(CANCEL_REQUEST_CODE), int32(1), Buffer.from([1, 2, 3])])],
    ['a 257-byte key', Buffer.concat([int32(CANCEL_REQUEST_CODE), int32(1), Buffer.alloc(257, 1)])],
  ])('rejects CancelRequest with %s', (_name, body) => {
    expect(() => decodeStartupPacket(body)).toThrow(WireError);
  });

  it('decodes a protocol 3.0 StartupMessage with its parameters in order', () => {
    const p = decodeStartupPacket(startupMessageBody([['user', 'orders'], ['database', 'orders'], ['application_name', 'app ünï']]));
    expect(p.kind).toBe('startup');
    if (p.kind !== 'startup') return;
    expect(p.major).toBe(3);
    expect(p.minor).toBe(0);
    expect([...p.params]).toEqual([['user', 'orders'], ['database', 'orders'], ['application_name', 'app ünï']]);
  });

  it('decodes a protocol 3.2 StartupMessage', () => {
    const p = decodeStartupPacket(startupMessageBody({ user: 'u', _pq_: 'x' }, { major: 3, minor: 2 }));
    expect(p).toEqual({ kind: 'startup', major: 3, minor: 2, params: new Map([['user', 'u'], ['_pq_', 'x']]) });
  });

  it('decodes a StartupMessage with no parameters and with empty values', () => {
    expect(decodeStartupPacket(startupMessageBody({}))).toEqual({ kind: 'startup', major: 3, minor: 0, params: new Map() });
    expect(decodeStartupPacket(startupMessageBody({ user: 'u', options: '' }))).toEqual({
      kind: 'startup',
      major: 3,
      minor: 0,
      params: new Map([['user', 'u'], ['options', '']]),
    });
  });

  it('reports other protocol versions as they are (the handler decides)', () => {
    expect(decodeStartupPacket(startupMessageBody({ user: 'u' }, { major: 2, minor: 0 }))).toMatchObject({ kind: 'startup', major: 2, minor: 0 });
  });

  const version = int32(protocolVersion(3, 0));
  it.each([
    ['empty', Buffer.alloc(0)],
    ['shorter than the code', Buffer.from([0, 3, 0])],
    ['only a version (no terminator)', version],
    ['an unterminated key', Buffer.concat([version, Buffer.from('user', 'utf8')])],
    ['a key without a value', Buffer.concat([version, cstring('user')])],
    ['a key with an unterminated value', Buffer.concat([version, cstring('user'), Buffer.from('orders', 'utf8')])],
    ['parameters without the final terminator', Buffer.concat([version, cstring('user'), cstring('orders')])],
    ['bytes after the final terminator', Buffer.concat([version, cstring('user'), cstring('orders'), Buffer.from([0]), Buffer.from('x')])],
    ['a second terminator', Buffer.concat([version, cstring('user'), cstring('orders'), Buffer.from([0, 0])])],
  ])('rejects a StartupMessage with %s', (_name, body) => {
    expect(() => decodeStartupPacket(body)).toThrow(WireError);
  });

  it('names the parameter without a value in the error, bounded in length', () => {
    const long = 'k'.repeat(500);
    const err = (() => {
      try {
        decodeStartupPacket(Buffer.concat([version, cstring(long)]));
      } catch (e) {
        return e as Error;
      }
      throw new Error('did not throw');
    })();
    expect(err).toBeInstanceOf(WireError);
    expect(err.message).toContain('k'.repeat(64));
    expect(err.message.length).toBeLessThan(200);
  });

  it('never throws anything but WireError on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          decodeStartupPacket(Buffer.from(bytes));
        } catch (e) {
          return e instanceof WireError;
        }
        return true;
      }),
      { numRuns: 2000 },
    );
  });

  it('round-trips arbitrary parameter lists through the builder', () => {
    const key = fc.string({ minLength: 1, maxLength: 12 }).filter((s) => !s.includes('\0'));
    const value = fc.string({ maxLength: 12 }).filter((s) => !s.includes('\0'));
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(key, value), { selector: ([k]) => k, maxLength: 6 }), (pairs) => {
        const p = decodeStartupPacket(startupMessageBody(pairs));
        expect(p).toEqual({ kind: 'startup', major: 3, minor: 0, params: new Map(pairs) });
      }),
    );
  });
});

describe('startup-phase encoders', () => {
  it('encodeStartup builds the same StartupMessage as the builder and decodes back', () => {
    const params = new Map([['user', 'orders'], ['database', 'orders_db'], ['client_encoding', 'UTF8']]);
    const bytes = encodeStartup(params);
    expect(bytes).toEqual(startupMessage([...params]));
    expect(decodeStartupPacket(bodyOf(bytes))).toEqual({ kind: 'startup', major: 3, minor: 0, params });
  });

  it('encodeStartup with no parameters', () => {
    expect(encodeStartup(new Map())).toEqual(startupMessage({}));
  });

  it('SSL_REQUEST is the SSLRequest packet', () => {
    expect(SSL_REQUEST).toEqual(sslRequest());
  });

  it('encodeCancelRequest builds a 4-byte-key CancelRequest (16 bytes) that decodes back', () => {
    const key = Buffer.from([0x11, 0x22, 0x33, 0x44]);
    const bytes = encodeCancelRequest(1234, key);
    expect(bytes).toEqual(cancelRequest(1234, key));
    expect(bytes.length).toBe(16);
    expect(decodeStartupPacket(bodyOf(bytes))).toEqual({ kind: 'cancel', processId: 1234, secretKey: key });
  });

  it('encodeCancelRequest builds a long-key (3.2) CancelRequest that decodes back', () => {
    const key = Buffer.alloc(32, 0x5a);
    const bytes = encodeCancelRequest(99, key);
    expect(bytes).toEqual(cancelRequest(99, key));
    expect(decodeStartupPacket(bodyOf(bytes))).toEqual({ kind: 'cancel', processId: 99, secretKey: key });
  });
});

describe('backend encoders', () => {
  it('AUTHENTICATION_OK', () => {
    expect(AUTHENTICATION_OK).toEqual(authenticationOk());
    expect(parseBackend(AUTHENTICATION_OK)).toMatchObject([{ name: 'authenticationOk' }]);
  });

  it('encodeParameterStatus', () => {
    const bytes = encodeParameterStatus('server_version', '17.2 (Keyless ü)');
    expect(bytes).toEqual(parameterStatus('server_version', '17.2 (Keyless ü)'));
    expect(parseBackend(bytes)).toMatchObject([{ name: 'parameterStatus', parameterName: 'server_version', parameterValue: '17.2 (Keyless ü)' }]);
  });

  it('encodeBackendKeyData with a 4-byte key', () => {
    const key = Buffer.from([0, 0, 0x30, 0x39]);
    const bytes = encodeBackendKeyData(4242, key);
    expect(bytes).toEqual(backendKeyData(4242, key));
    expect(parseBackend(bytes)).toMatchObject([{ name: 'backendKeyData', processID: 4242, secretKey: 12345 }]);
  });

  it('encodeBackendKeyData with a 32-byte key (3.2)', () => {
    const key = Buffer.alloc(32, 7);
    expect(encodeBackendKeyData(1, key)).toEqual(backendKeyData(1, key));
  });

  it.each(['I', 'T', 'E'] as const)('encodeReadyForQuery(%s)', (status) => {
    const bytes = encodeReadyForQuery(status);
    expect(bytes).toEqual(readyForQuery(status));
    expect(parseBackend(bytes)).toMatchObject([{ name: 'readyForQuery', status }]);
  });

  it('encodeNegotiateProtocolVersion with and without unrecognised options', () => {
    expect(encodeNegotiateProtocolVersion(0, [])).toEqual(negotiateProtocolVersion(0, []));
    expect(encodeNegotiateProtocolVersion(2, ['_pq_.a', '_pq_.b'])).toEqual(negotiateProtocolVersion(2, ['_pq_.a', '_pq_.b']));
  });

  it('encodeErrorResponse writes S, V, C, M and optional D, H', () => {
    const bytes = encodeErrorResponse({ severity: 'FATAL', code: '28P01', message: 'keyless: nope' });
    expect(bytes).toEqual(errorResponse([['S', 'FATAL'], ['V', 'FATAL'], ['C', '28P01'], ['M', 'keyless: nope']]));
    const full = encodeErrorResponse({ severity: 'ERROR', code: '08P01', message: 'm', detail: 'd', hint: 'h' });
    expect(full).toEqual(errorResponse([['S', 'ERROR'], ['V', 'ERROR'], ['C', '08P01'], ['M', 'm'], ['D', 'd'], ['H', 'h']]));
    expect(parseBackend(full)).toMatchObject([{ name: 'error', severity: 'ERROR', code: '08P01', message: 'm', detail: 'd', hint: 'h' }]);
  });

  it('decodeErrorFields reads what encodeErrorResponse wrote and what the builder writes', () => {
    const bytes = encodeErrorResponse({ severity: 'FATAL', code: '3D000', message: 'no such database "ü"', detail: 'x' });
    expect([...decodeErrorFields(messageBody(bytes))]).toEqual([
      ['S', 'FATAL'],
      ['V', 'FATAL'],
      ['C', '3D000'],
      ['M', 'no such database "ü"'],
      ['D', 'x'],
    ]);
    const notice = errorResponse([['S', 'NOTICE'], ['C', '00000'], ['M', 'hello']], 'N');
    expect(decodeErrorFields(messageBody(notice))).toEqual(new Map([['S', 'NOTICE'], ['C', '00000'], ['M', 'hello']]));
  });

  it('decodeErrorFields stops at a truncated field instead of throwing', () => {
    const body = Buffer.concat([Buffer.from('C'), cstring('28P01'), Buffer.from('Mtrunc', 'utf8')]);
    expect(decodeErrorFields(body)).toEqual(new Map([['C', '28P01']]));
    expect(decodeErrorFields(Buffer.alloc(0))).toEqual(new Map());
  });
});
