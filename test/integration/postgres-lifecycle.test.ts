// Connection lifecycle: idle timeout, and shutdown (readiness first, stop accepting, let open
// work finish, then close what is left with a protocol error).
import type pg from 'pg';
import { afterEach, expect, inject, test } from 'vitest';
import { startKeyless, type KeylessProcess } from '../support/keyless.ts';
import { client, fileStoreFor, pgTarget, targets } from '../support/pg-fixtures.ts';

const pgInfo = inject('pg');
const pki = inject('pki');
let keyless: KeylessProcess | undefined;

afterEach(async () => {
  await keyless?.stop('SIGKILL');
  keyless = undefined;
});

/** The first error the client reports; later ones (the socket closing after it) are expected. */
function nextError(c: pg.Client): Promise<Error & { code?: string }> {
  return new Promise((resolve) => c.on('error', resolve));
}

test('an idle connection is closed after the idle timeout with a 57P05 error', async () => {
  const fx = fileStoreFor(pgInfo, pki);
  const t = await pgTarget(pgInfo, 'scram', { timeouts: { idle: '300ms' } });
  keyless = await startKeyless({ stores: fx.stores, targets: targets({ idle: t }) });
  const c = client(t.port);
  await c.connect();
  expect((await c.query('SELECT 1 AS one')).rows[0].one).toBe(1);
  const err = await nextError(c);
  expect(err).toMatchObject({ code: '57P05', message: 'keyless: target idle: connection closed after the idle timeout' });
  await keyless.waitForLog((l) => l.msg === 'connection closed' && l.reason === 'idle timeout');
});

test('SIGTERM: readiness fails, new connections are refused, an open transaction can commit, exit 0', async () => {
  const fx = fileStoreFor(pgInfo, pki);
  const t = await pgTarget(pgInfo, 'scram');
  keyless = await startKeyless({ stores: fx.stores, drainTimeout: '20s', targets: targets({ main: t }) });
  const c = client(t.port);
  await c.connect();
  await c.query('CREATE TABLE IF NOT EXISTS drain_check (v text)');
  await c.query('BEGIN');
  await c.query("INSERT INTO drain_check VALUES ('committed during drain')");
  keyless.child.kill('SIGTERM');
  await keyless.waitForLog((l) => l.msg === 'draining');
  expect((await keyless.admin('/readyz')).status).toBe(503);
  const late = client(t.port);
  await expect(late.connect()).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  await c.query('COMMIT');
  expect((await c.query("SELECT count(*)::int AS n FROM drain_check WHERE v = 'committed during drain'")).rows[0].n).toBeGreaterThan(0);
  await c.query('DROP TABLE drain_check');
  await c.end();
  expect(await keyless.exited).toBe(0);
});

test('SIGTERM past the drain deadline: open connections get 57P01 and the process exits 0', async () => {
  const fx = fileStoreFor(pgInfo, pki);
  const t = await pgTarget(pgInfo, 'scram');
  keyless = await startKeyless({ stores: fx.stores, drainTimeout: '300ms', targets: targets({ main: t }) });
  const c = client(t.port);
  await c.connect();
  const err = nextError(c);
  keyless.child.kill('SIGTERM');
  expect(await err).toMatchObject({ code: '57P01', message: 'keyless: target main: proxy is shutting down' });
  expect(await keyless.exited).toBe(0);
});
