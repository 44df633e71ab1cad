// Integration suite setup: test PKI and the suite's own PostgreSQL, shared by every file via inject().
import type { TestProject } from 'vitest/node';
import { startMariaDb, type MariaDbInfo } from './mysql/mariadb.ts';
import { startPgCluster, type PgClusterInfo } from './pg-cluster.ts';
import { createPki, type CertFiles } from './tls.ts';

export interface PkiInfo {
  dir: string;
  caFile: string;
  server: CertFiles;
  wrongName: CertFiles;
  otherCaFile: string;
  /** Client certificates by CN, issued up front (provide() needs plain data). */
  clients: Record<string, CertFiles>;
}

declare module 'vitest' {
  export interface ProvidedContext {
    pki: PkiInfo;
    pg: PgClusterInfo;
    mariadb: MariaDbInfo;
  }
}

export default async function setup(project: TestProject): Promise<() => void> {
  const pki = createPki();
  // MariaDB's install runs in the background while the PostgreSQL cluster starts.
  const mariadbStarting = startMariaDb(pki);
  mariadbStarting.catch(() => undefined); // awaited below; no unhandled rejection meanwhile
  let pg;
  try {
    pg = await startPgCluster(pki);
  } catch (err) {
    await (await mariadbStarting.catch(() => undefined))?.stop();
    throw err;
  }
  const mariadb = await mariadbStarting;
  const { stop: stopMariaDb, ...mariadbInfo } = mariadb;
  project.provide('mariadb', mariadbInfo);
  project.provide('pki', {
    dir: pki.dir,
    caFile: pki.caFile,
    server: pki.server,
    wrongName: pki.wrongName,
    otherCaFile: pki.otherCaFile,
    clients: { [pg.roles.cert.user]: pki.client(pg.roles.cert.user) },
  });
  const { stop, ...info } = pg;
  project.provide('pg', info);
  return async () => {
    stop();
    await stopMariaDb();
  };
}
