import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TLS_MODES, configSchema, duration, groupByListen, hostPort, listenKey, parseHostPort } from '../../../src/config/schema.ts';

describe('duration', () => {
  it.each([
    [0, 0],
    [250, 250],
    ['250ms', 250],
    ['10s', 10_000],
    ['1.5s', 1500],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['0s', 0],
  ] as const)('%j is %i ms', (input, ms) => {
    expect(duration.parse(input)).toBe(ms);
  });

  it.each(['10', '10 s', '1d', '-5s', 's', '', '1.s', '.5s', '10S', '1h30m'])('rejects the string %j', (input) => {
    expect(duration.safeParse(input).success).toBe(false);
  });

  it.each([-1, Number.NaN, Number.POSITIVE_INFINITY])('rejects the number %d', (input) => {
    expect(duration.safeParse(input).success).toBe(false);
  });
});

describe('parseHostPort / hostPort', () => {
  it.each([
    ['0.0.0.0:5432', '0.0.0.0', 5432],
    ['127.0.0.1:1', '127.0.0.1', 1],
    ['localhost:65535', 'localhost', 65535],
    ['orders.db.internal:6432', 'orders.db.internal', 6432],
    [':5432', '0.0.0.0', 5432],
    ['[::]:5432', '::', 5432],
    ['[::1]:9090', '::1', 9090],
    ['[fd00::1:2]:80', 'fd00::1:2', 80],
  ] as const)('%s → %s port %i', (input, host, port) => {
    expect(parseHostPort(input)).toEqual({ host, port });
    expect(hostPort.parse(input)).toEqual({ host, port });
  });

  it.each([
    'nope',
    '5432',
    'host:',
    'host:port',
    'host:65536',
    'host:123456',
    '::1:5432',
    'a b:5432',
    '[::1]',
    '[::1]5432',
    'host:-1',
    'host:54 32',
    '[zz::1]:5432',
  ])('rejects %j', (input) => {
    expect(parseHostPort(input)).toBeUndefined();
    expect(hostPort.safeParse(input).success).toBe(false);
  });

  it('rejects a bracketed host that is not an IPv6 address', () => {
    expect(parseHostPort('[abc]:5432')).toBeUndefined();
    expect(parseHostPort('[1.2.3.4]:5432')).toBeUndefined();
    expect(parseHostPort('[:::::]:5432')).toBeUndefined();
  });

  it('round-trips through listenKey', () => {
    for (const s of ['0.0.0.0:5432', '[::1]:9090', 'db.internal:6432']) expect(listenKey(parseHostPort(s)!)).toBe(s);
  });

  it('any port from 0 to 65535 parses back to itself', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 65535 }), (port) => {
        expect(parseHostPort(`10.0.0.1:${port}`)).toEqual({ host: '10.0.0.1', port });
      }),
    );
  });
});

describe('groupByListen', () => {
  it('groups targets by normalised listen address', () => {
    const groups = groupByListen({
      a: { listen: { host: '0.0.0.0', port: 5432 } },
      b: { listen: { host: '0.0.0.0', port: 5432 } },
      c: { listen: { host: '::1', port: 5432 } },
    });
    expect([...groups.keys()]).toEqual(['0.0.0.0:5432', '[::1]:5432']);
    expect(groups.get('0.0.0.0:5432')!.map(([n]) => n)).toEqual(['a', 'b']);
  });
});

describe('configSchema', () => {
  const minimal = {
    stores: { env: { kind: 'env' } },
    targets: {
      'orders-db': {
        protocol: 'postgres',
        listen: ':5432',
        upstream: { host: 'orders.db.internal' },
        credential: { store: 'env', path: 'orders' },
      },
    },
  };

  it('fills in every default', () => {
    const cfg = configSchema.parse(minimal);
    expect(cfg.admin).toEqual({ listen: { host: '127.0.0.1', port: 9090 } });
    expect(cfg.log).toEqual({ level: 'info' });
    expect(cfg.drainTimeout).toBe(30_000);
    expect(cfg.stores.env).toEqual({ kind: 'env', prefix: '' });
    const t = cfg.targets['orders-db']!;
    expect(t.upstream).toEqual({ host: 'orders.db.internal', port: 5432, tls: { mode: 'verify-full' } });
    expect(t.timeouts).toEqual({ connect: 10_000, handshake: 15_000, idle: 0 });
    expect(t.maxConnections).toBe(10_000);
    expect(t.allow).toBeUndefined();
    expect(t.route).toBeUndefined();
  });

  it('TLS mode defaults to verify-full even when other tls fields are given', () => {
    const cfg = configSchema.parse({
      ...minimal,
      targets: { t: { ...minimal.targets['orders-db'], upstream: { host: 'h', tls: { ca: 'ca.pem' } } } },
    });
    expect(cfg.targets.t!.upstream.tls).toEqual({ mode: 'verify-full', ca: 'ca.pem' });
  });

  it('accepts each TLS mode', () => {
    for (const mode of TLS_MODES) {
      const cfg = configSchema.parse({ ...minimal, targets: { t: { ...minimal.targets['orders-db'], upstream: { host: 'h', tls: { mode } } } } });
      expect(cfg.targets.t!.upstream.tls.mode).toBe(mode);
    }
  });

  it('file stores watch by default', () => {
    const cfg = configSchema.parse({ ...minimal, stores: { ...minimal.stores, mounted: { kind: 'file', dir: '/var/run/secrets/keyless' } } });
    expect(cfg.stores.mounted).toEqual({ kind: 'file', dir: '/var/run/secrets/keyless', watch: true });
  });

  it('a partial timeouts block keeps the other defaults', () => {
    const cfg = configSchema.parse({ ...minimal, targets: { t: { ...minimal.targets['orders-db'], timeouts: { connect: '2s' } } } });
    expect(cfg.targets.t!.timeouts).toEqual({ connect: 2000, handshake: 15_000, idle: 0 });
  });
});
