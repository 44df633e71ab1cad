// The `protocol: mysql` target in the config schema: defaults, path resolution, and the rule that
// MySQL targets sharing a listener share one upstream server.
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../../../src/config/load.ts';

const FILE = '/etc/keyless/keyless.yaml';

function config(targets: string): string {
  return `stores:
  mounted: { kind: file, dir: secrets }
targets:
${targets}`;
}

const BILLING = `  billing-db:
    protocol: mysql
    listen: 0.0.0.0:3306
    upstream: { host: billing.db.internal }
    credential: { store: mounted, path: billing-db }
`;

function problems(text: string): string[] {
  try {
    parseConfig(text, FILE);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems.map((p) => `${p.path}: ${p.message}`);
  }
  throw new Error('expected the config to be rejected');
}

describe('mysql target config', () => {
  it('defaults: port 3306, verify-full, no public key fetching', () => {
    const t = parseConfig(config(BILLING), FILE).targets['billing-db']!;
    expect(t.protocol).toBe('mysql');
    if (t.protocol !== 'mysql') throw new Error('unreachable');
    expect(t.upstream).toEqual({ host: 'billing.db.internal', port: 3306, tls: { mode: 'verify-full' }, fetchServerPublicKey: false });
    expect(t.listen).toEqual({ host: '0.0.0.0', port: 3306 });
  });

  it('resolves a pinned public key against the config file', () => {
    const text = config(BILLING.replace('upstream: { host: billing.db.internal }', 'upstream: { host: db, tls: { mode: disable }, serverPublicKey: keys/db.pem }'));
    const t = parseConfig(text, FILE).targets['billing-db']!;
    expect(t.protocol === 'mysql' && t.upstream.serverPublicKey).toBe('/etc/keyless/keys/db.pem');
  });

  it('names the field of a wrong value', () => {
    expect(problems(config(BILLING.replace('host: billing.db.internal', 'host: x, tls: { mode: verify }')))).toEqual([
      'targets.billing-db.upstream.tls.mode: expected one of disable|require|verify-ca|verify-full',
    ]);
    expect(problems(config(BILLING.replace('host: billing.db.internal', 'host: x, fetchServerPublicKey: yes-please')))).toEqual(['targets.billing-db.upstream.fetchServerPublicKey: expected boolean']);
  });

  it('routes schemas on a shared listener only to one upstream server', () => {
    const shared = (host2: string): string =>
      config(`  orders:
    protocol: mysql
    listen: 0.0.0.0:3306
    route: { database: orders }
    upstream: { host: db.internal }
    credential: { store: mounted, path: orders }
  billing:
    protocol: mysql
    listen: 0.0.0.0:3306
    route: { database: billing }
    upstream: { host: ${host2}, database: billing_prod }
    credential: { store: mounted, path: billing }
`);
    expect(Object.keys(parseConfig(shared('db.internal'), FILE).targets)).toEqual(['orders', 'billing']);
    expect(problems(shared('other.internal'))).toEqual([
      'targets.billing.upstream: must have the host, port and tls of "orders", which shares its listen address (MySQL targets on one listener share one server)',
    ]);
  });
});
