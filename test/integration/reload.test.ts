// Live reload: the config file changes (written the way a ConfigMap update lands: a new file
// renamed into place) or SIGHUP arrives; an invalid file keeps the running config; a valid one
// adds, removes and changes targets without dropping connections to targets that did not change.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type pg from 'pg';
import { afterAll, beforeAll, expect, inject, test } from 'vitest';
import { parse, stringify } from 'yaml';
import { startKeyless, type KeylessProcess } from '../support/keyless.ts';
import { client, fileStoreFor, pgTarget, targets } from '../support/pg-fixtures.ts';

const pgInfo = inject('pg');
const pki = inject('pki');
let keyless: KeylessProcess;
let t: Record<string, Awaited<ReturnType<typeof pgTarget>>>;
let stores: Record<string, unknown>;

function writeConfig(mutate: (cfg: Record<string, unknown>) => Record<string, unknown> | string): void {
  const cfg = parse(readFileSync(keyless.configFile, 'utf8')) as Record<string, unknown>;
  const next = mutate(cfg);
  const tmp = `${keyless.configFile}.tmp`;
  writeFileSync(tmp, typeof next === 'string' ? next : stringify(next));
  renameSync(tmp, keyless.configFile);
}

async function user(c: pg.Client): Promise<string> {
  return (await c.query('SELECT current_user AS u')).rows[0].u as string;
}

function firstError(c: pg.Client): Promise<Error & { code?: string }> {
  return new Promise((resolve) => c.on('error', resolve));
}

beforeAll(async () => {
  const fx = fileStoreFor(pgInfo, pki);
  stores = fx.stores;
  t = {
    keep: await pgTarget(pgInfo, 'scram'),
    change: await pgTarget(pgInfo, 'scram'),
    remove: await pgTarget(pgInfo, 'scram'),
    add: await pgTarget(pgInfo, 'md5'),
  };
  keyless = await startKeyless({ stores, drainTimeout: '1s', targets: targets({ keep: t.keep!, change: t.change!, remove: t.remove! }) });
});

afterAll(async () => {
  await keyless?.stop();
});

test('a valid change: added, removed and changed targets; unchanged ones keep their connections', async () => {
  const keep = client(t.keep!.port);
  const change = client(t.change!.port);
  const remove = client(t.remove!.port);
  await Promise.all([keep.connect(), change.connect(), remove.connect()]);
  const changeClosed = firstError(change);
  const removeClosed = firstError(remove);
  const before = keyless.logs().length;
  writeConfig((cfg) => {
    const next = targets({ keep: t.keep!, change: { ...t.change!, credential: { store: 'files', path: 'md5' } }, add: t.add! });
    return { ...cfg, targets: next };
  });
  const reloaded = await keyless.waitForLog((l, i) => i >= before && l.msg === 'config reloaded');
  expect(reloaded.draining).toBe(2);
  // Unchanged: the open connection carries on, new ones work.
  expect(await user(keep)).toBe('kl_scram');
  const keep2 = client(t.keep!.port);
  await keep2.connect();
  expect(await user(keep2)).toBe('kl_scram');
  // Changed: new connections get the new credential; the old one drains, then is closed.
  const change2 = client(t.change!.port);
  await change2.connect();
  expect(await user(change2)).toBe('kl_md5');
  // Added.
  const add = client(t.add!.port);
  await add.connect();
  expect(await user(add)).toBe('kl_md5');
  // Removed: the port no longer accepts.
  await expect(client(t.remove!.port).connect()).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  // The drained connections are closed after drainTimeout, and told why.
  for (const err of await Promise.all([changeClosed, removeClosed])) {
    expect(err).toMatchObject({ code: '57P01', message: expect.stringMatching(/^keyless: target (change|remove): target was reconfigured or removed; reconnect$/) });
  }
  expect(await user(keep)).toBe('kl_scram');
  await Promise.all([keep, keep2, change2, add].map((c) => c.end()));
  expect((await keyless.admin('/metrics')).body).toMatch(/keyless_config_reloads_total\{result="ok"\} 1\n/);
});

test('an invalid file keeps the running config, says why, and counts it', async () => {
  const before = keyless.logs().length;
  writeConfig(() => 'targets:\n  keep:\n    protocol: postgres\n    listen: nowhere\n');
  const line = await keyless.waitForLog((l, i) => i >= before && l.msg === 'config reload rejected: keeping the running config');
  expect(JSON.stringify(line.problems)).toMatch(/listen: expected host:port/);
  const c = client(t.keep!.port);
  await c.connect();
  expect(await user(c)).toBe('kl_scram');
  await c.end();
  expect((await keyless.admin('/metrics')).body).toMatch(/keyless_config_reloads_total\{result="invalid"\} 1\n/);
  expect((await keyless.admin('/readyz')).status).toBe(200);
});

test('SIGHUP reloads the file', async () => {
  writeConfig((cfg) => ({ ...cfg, stores, drainTimeout: '1s', targets: targets({ keep: t.keep! }) }));
  await keyless.waitForLog((l) => l.msg === 'config reloaded' && Array.isArray(l.targets) && l.targets.length === 1);
  const before = keyless.logs().length;
  keyless.child.kill('SIGHUP');
  const line = await keyless.waitForLog((l, i) => i >= before && l.msg === 'config reloaded');
  expect(line.targets).toEqual(['keep']);
  expect(line.draining).toBe(0);
});
