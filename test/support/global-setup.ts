// Integration suite setup: test PKI and the suite's own PostgreSQL, shared by every file via inject().
import type { TestProject } from 'vitest/node';
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
  }
}

export default async function setup(project: TestProject): Promise<() => void> {
  const pki = createPki();
  const pg = await startPgCluster(pki);
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
  return () => stop();
}
