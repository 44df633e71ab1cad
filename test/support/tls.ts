// Test PKI made at test time with the openssl CLI (nothing committed): a CA, a server
// certificate for localhost/127.0.0.1, one for a wrong name, an unrelated CA, and client
// certificates on demand.
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CertFiles {
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
}

export interface TestPki {
  dir: string;
  caFile: string;
  ca: string;
  /** CN=localhost, SAN DNS:localhost, IP:127.0.0.1, IP:::1 — signed by the CA. */
  server: CertFiles;
  /** SAN DNS:wrong.keyless.test only — signed by the CA; verify-full must reject it for localhost. */
  wrongName: CertFiles;
  /** A CA that signed nothing we serve: verify-ca with it must fail. */
  otherCaFile: string;
  /** A client certificate with the given CN, signed by the CA. */
  client(cn: string): CertFiles;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function newKey(dir: string, name: string): string {
  const keyFile = join(dir, `${name}.key`);
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyFile], dir);
  return keyFile;
}

function makeCa(dir: string, name: string): { certFile: string; keyFile: string } {
  const keyFile = newKey(dir, name);
  const certFile = join(dir, `${name}.crt`);
  openssl(
    ['req', '-x509', '-new', '-key', keyFile, '-sha256', '-days', '3650', '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', certFile],
    dir,
  );
  return { certFile, keyFile };
}

function issue(dir: string, ca: { certFile: string; keyFile: string }, name: string, cn: string, ext: string): CertFiles {
  const keyFile = newKey(dir, name);
  const csr = join(dir, `${name}.csr`);
  const certFile = join(dir, `${name}.crt`);
  const extFile = join(dir, `${name}.ext`);
  writeFileSync(extFile, `${ext}\n`);
  openssl(['req', '-new', '-key', keyFile, '-subj', `/CN=${cn}`, '-out', csr], dir);
  openssl(['x509', '-req', '-in', csr, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-CAcreateserial', '-days', '825', '-sha256', '-extfile', extFile, '-out', certFile], dir);
  return { certFile, keyFile, cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
}

export function createPki(dir = mkdtempSync(join(tmpdir(), 'keyless-pki-'))): TestPki {
  mkdirSync(dir, { recursive: true });
  const ca = makeCa(dir, 'keyless-test-ca');
  const other = makeCa(dir, 'keyless-other-ca');
  const serverExt = 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1';
  const server = issue(dir, ca, 'server', 'localhost', serverExt);
  const wrongName = issue(dir, ca, 'wrong-name', 'wrong.keyless.test', serverExt.replace(/subjectAltName=.*/, 'subjectAltName=DNS:wrong.keyless.test'));
  const clients = new Map<string, CertFiles>();
  return {
    dir,
    caFile: ca.certFile,
    ca: readFileSync(ca.certFile, 'utf8'),
    server,
    wrongName,
    otherCaFile: other.certFile,
    client(cn: string): CertFiles {
      let c = clients.get(cn);
      if (!c) {
        c = issue(dir, ca, `client-${cn.replace(/[^A-Za-z0-9_-]/g, '_')}`, cn, 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth');
        clients.set(cn, c);
      }
      return c;
    },
  };
}

/**
 * Copy the server certificate, its key and the CA into a database server's data directory as
 * server.crt, server.key and ca.crt, owned by the server's user and readable by it alone (both
 * PostgreSQL and MariaDB refuse a key others can read).
 */
export function installServerTls(pki: { caFile: string; server: { certFile: string; keyFile: string } }, dataDir: string, uid: number, gid: number): void {
  for (const [src, name] of [
    [pki.server.certFile, 'server.crt'],
    [pki.server.keyFile, 'server.key'],
    [pki.caFile, 'ca.crt'],
  ] as const) {
    const dst = join(dataDir, name);
    copyFileSync(src, dst);
    chownSync(dst, uid, gid);
    chmodSync(dst, 0o600);
  }
}
