// Test PKI for the benchmark (the suite's own generator): node bench/http/pki.ts <dir>
import { createPki } from '../../test/support/tls.ts';

const dir = process.argv[2];
if (!dir) throw new Error('usage: pki.ts <dir>');
const pki = createPki(dir);
console.log(pki.caFile);
