import { describe, expect, it } from 'vitest';
import { AccessPolicy } from '../../../src/proxy/policy.ts';

describe('AccessPolicy', () => {
  it('with no rules allows every client', () => {
    const p = new AccessPolicy(undefined);
    for (const a of ['10.0.0.1', '192.168.1.1', '::1', '2001:db8::1', '::ffff:8.8.8.8']) expect(p.allows(a), a).toBe(true);
  });

  it('with an empty rule list allows no client (fails closed)', () => {
    // `allow: []` is an explicit list that names nobody; Keyless treats it as deny-all.
    const p = new AccessPolicy([]);
    expect(p.allows('10.0.0.1')).toBe(false);
    expect(p.allows('::1')).toBe(false);
  });

  it('IPv4 CIDR: inside, edges and outside', () => {
    const p = new AccessPolicy([{ cidr: '10.42.0.0/16' }]);
    expect(p.allows('10.42.0.0')).toBe(true);
    expect(p.allows('10.42.255.255')).toBe(true);
    expect(p.allows('10.42.17.3')).toBe(true);
    expect(p.allows('10.43.0.0')).toBe(false);
    expect(p.allows('10.41.255.255')).toBe(false);
    expect(p.allows('11.42.0.1')).toBe(false);
  });

  it('IPv4 /32, /0 and a single address', () => {
    expect(new AccessPolicy([{ cidr: '192.0.2.7/32' }]).allows('192.0.2.7')).toBe(true);
    expect(new AccessPolicy([{ cidr: '192.0.2.7/32' }]).allows('192.0.2.8')).toBe(false);
    expect(new AccessPolicy([{ cidr: '0.0.0.0/0' }]).allows('203.0.113.9')).toBe(true);
    const single = new AccessPolicy([{ cidr: '192.0.2.7' }]);
    expect(single.allows('192.0.2.7')).toBe(true);
    expect(single.allows('192.0.2.6')).toBe(false);
  });

  it('IPv6 CIDR and single address', () => {
    const p = new AccessPolicy([{ cidr: 'fd00:42::/32' }, { cidr: '::1' }]);
    expect(p.allows('fd00:42::1')).toBe(true);
    expect(p.allows('fd00:42:ffff:ffff:ffff:ffff:ffff:ffff')).toBe(true);
    expect(p.allows('fd00:43::1')).toBe(false);
    expect(p.allows('::1')).toBe(true);
    expect(p.allows('::2')).toBe(false);
    expect(p.allows('0:0:0:0:0:0:0:1')).toBe(true);
  });

  it('several rules: any match allows', () => {
    const p = new AccessPolicy([{ cidr: '10.0.0.0/8' }, { cidr: '2001:db8::/48' }, { cidr: '198.51.100.1' }]);
    expect(p.allows('10.9.9.9')).toBe(true);
    expect(p.allows('2001:db8:0:1::5')).toBe(true);
    expect(p.allows('198.51.100.1')).toBe(true);
    expect(p.allows('198.51.100.2')).toBe(false);
    expect(p.allows('2001:db9::1')).toBe(false);
  });

  it('IPv4-mapped IPv6 clients (dual-stack listener) match IPv4 rules', () => {
    const p = new AccessPolicy([{ cidr: '10.42.0.0/16' }]);
    expect(p.allows('::ffff:10.42.1.2')).toBe(true);
    expect(p.allows('::FFFF:10.42.1.2')).toBe(true);
    expect(p.allows('::ffff:10.43.1.2')).toBe(false);
  });

  it('IPv4-mapped IPv6 clients do not slip through an IPv6-only rule set', () => {
    const p = new AccessPolicy([{ cidr: 'fd00::/8' }]);
    expect(p.allows('::ffff:10.42.1.2')).toBe(false);
  });
});
