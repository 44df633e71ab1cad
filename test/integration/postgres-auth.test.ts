// Each upstream auth method and each upstream TLS mode, through Keyless, against the suite's
// PostgreSQL (which demands them via pg_hba), with the pg client.
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { startKeyless, type KeylessProcess } from '../support/keyless.ts';
import { client, connectError, fileStoreFor, pgTarget, targets } from '../support/pg-fixtures.ts';

const pgInfo = inject('pg');
const pki = inject('pki');

let keyless: KeylessProcess;
const ports: Record<string, number> = {};

beforeAll(async () => {
  const fx = fileStoreFor(pgInfo, pki);
  const verifyFull = { mode: 'verify-full', ca: pki.caFile };
  const t = {
    scram: await pgTarget(pgInfo, 'scram'),
    md5: await pgTarget(pgInfo, 'md5'),
    password: await pgTarget(pgInfo, 'password'),
    trust: await pgTarget(pgInfo, 'trust'),
    'scram-tls': await pgTarget(pgInfo, 'scram', { upstream: { tls: verifyFull } }),
    'md5-tls': await pgTarget(pgInfo, 'md5', { upstream: { tls: verifyFull } }),
    cert: await pgTarget(pgInfo, 'cert', { upstream: { tls: verifyFull } }),
    'cert-no-tls': await pgTarget(pgInfo, 'cert'),
    'sslonly-disable': await pgTarget(pgInfo, 'sslonly'),
    'sslonly-require': await pgTarget(pgInfo, 'sslonly', { upstream: { tls: { mode: 'require' } } }),
    'sslonly-verify-ca': await pgTarget(pgInfo, 'sslonly', { upstream: { tls: { mode: 'verify-ca', ca: pki.caFile, servername: 'wrong.keyless.test' } } }),
    'sslonly-verify-ca-other': await pgTarget(pgInfo, 'sslonly', { upstream: { tls: { mode: 'verify-ca', ca: pki.otherCaFile } } }),
    'sslonly-verify-full': await pgTarget(pgInfo, 'sslonly', { upstream: { tls: verifyFull } }),
    'sslonly-verify-full-localhost': await pgTarget(pgInfo, 'sslonly', { upstream: { host: 'localhost', tls: verifyFull } }),
    'sslonly-verify-full-wrong-name': await pgTarget(pgInfo, 'sslonly', { upstream: { tls: { ...verifyFull, servername: 'wrong.keyless.test' } } }),
    'sslonly-verify-full-system-roots': await pgTarget(pgInfo, 'sslonly', { upstream: { tls: { mode: 'verify-full' } } }),
    'sslonly-default-mode': await pgTarget(pgInfo, 'sslonly', { upstream: { tls: { ca: pki.caFile } } }),
  };
  for (const [k, v] of Object.entries(t)) ports[k] = v.port;
  keyless = await startKeyless({ stores: fx.stores, targets: targets(t) });
});

afterAll(async () => {
  await keyless?.stop();
});

function loginLine(target: string): Promise<Record<string, unknown>> {
  return keyless.waitForLog((l) => l.msg === 'upstream login ok' && l.target === target);
}

async function whoami(port: number): Promise<{ user: string; ssl: boolean }> {
  const c = client(port);
  await c.connect();
  try {
    const r = await c.query<{ user: string; ssl: boolean }>('SELECT current_user AS user, (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS ssl');
    return r.rows[0]!;
  } finally {
    await c.end();
  }
}

describe('upstream auth methods', () => {
  test.each([
    ['scram', 'kl_scram', 'SCRAM-SHA-256'],
    ['md5', 'kl_md5', 'md5'],
    ['password', 'kl_clear', 'password'],
    ['trust', 'kl_trust', 'trust'],
  ])('%s: logs in as the stored user', async (target, user, auth) => {
    expect(await whoami(ports[target]!)).toEqual({ user, ssl: false });
    expect(await loginLine(target)).toMatchObject({ auth, tls: false, user });
  });

  test('SCRAM over TLS uses SCRAM-SHA-256-PLUS (tls-server-end-point channel binding)', async () => {
    expect(await whoami(ports['scram-tls']!)).toEqual({ user: 'kl_scram', ssl: true });
    expect(await loginLine('scram-tls')).toMatchObject({ auth: 'SCRAM-SHA-256-PLUS', tls: true });
  });

  test('md5 over TLS', async () => {
    expect(await whoami(ports['md5-tls']!)).toEqual({ user: 'kl_md5', ssl: true });
  });

  test('client certificate from the store (pg_hba cert)', async () => {
    expect(await whoami(ports.cert!)).toEqual({ user: 'kl_cert', ssl: true });
    expect(await loginLine('cert')).toMatchObject({ auth: 'cert', tls: true });
  });

  test('a client certificate with tls.mode disable is refused with a clear error', async () => {
    const err = await connectError(ports['cert-no-tls']!);
    expect(err.message).toBe('keyless: target cert-no-tls: stored credential is incomplete');
    expect(err.code).toBe('08001');
  });

  test('the client password and user are ignored', async () => {
    const c = client(ports.scram!, { user: 'someone-else', password: 'not-the-password' });
    await c.connect();
    expect((await c.query('SELECT current_user AS u')).rows[0].u).toBe('kl_scram');
    await c.end();
  });
});

describe('upstream TLS modes', () => {
  test('disable: a hostssl-only role is refused by upstream, and the client is told', async () => {
    const err = await connectError(ports['sslonly-disable']!);
    expect(err.message).toBe('keyless: target sslonly-disable: upstream refused the stored credential');
    expect(err.code).toBe('28000');
    const line = await keyless.waitForLog((l) => l.msg === 'connection failed' && l.target === 'sslonly-disable');
    expect(String(line?.err)).toMatch(/pg_hba.conf rejects connection .* no encryption/);
  });

  test.each(['sslonly-require', 'sslonly-verify-ca', 'sslonly-verify-full', 'sslonly-verify-full-localhost', 'sslonly-default-mode'])('%s: connects over TLS', async (target) => {
    expect(await whoami(ports[target]!)).toEqual({ user: 'kl_ssl_only', ssl: true });
  });

  test.each([
    ['sslonly-verify-full-wrong-name', /Hostname\/IP does not match|ERR_TLS_CERT_ALTNAME_INVALID/],
    ['sslonly-verify-ca-other', /unable to verify|UNABLE_TO_VERIFY_LEAF_SIGNATURE|self.signed|unable to get local issuer/i],
    ['sslonly-verify-full-system-roots', /SELF_SIGNED_CERT_IN_CHAIN|unable to get local issuer/i],
  ])('%s: the certificate is rejected', async (target, why) => {
    const err = await connectError(ports[target]!);
    expect(err.message).toBe(`keyless: target ${target}: upstream TLS verification failed`);
    expect(err.code).toBe('08001');
    const line = await keyless.waitForLog((l) => l.msg === 'connection failed' && l.target === target);
    expect(line).toMatchObject({ code: 'KL_ERR_UPSTREAM_TLS' });
    expect(String(line?.err) + String(line?.cause)).toMatch(why);
  });
});

describe('metrics', () => {
  test('connections by target and result, handshake latency and TLS failures are exported', async () => {
    const m = (await keyless.admin('/metrics')).body;
    expect(m).toMatch(/keyless_connections_total\{target="scram",result="ok"\} [1-9]/);
    expect(m).toMatch(/keyless_connections_total\{target="sslonly-verify-ca-other",result="upstream_tls"\} [1-9]/);
    expect(m).toMatch(/keyless_handshake_duration_seconds_count\{target="scram"\} [1-9]/);
    expect(m).toMatch(/keyless_bytes_total\{target="scram",direction="upstream_to_client"\} [1-9]/);
    expect(m).toMatch(/keyless_bytes_total\{target="scram",direction="client_to_upstream"\} [1-9]/);
  });
});
