// The Vault-compatible test server: see server.ts for the entry point.
export { startVaultServer, VaultServer, RequestLog, type VaultServerOptions, type Interceptor, type InterceptReply, type InterceptedRequest, type RequestFilter } from './server.ts';
export { ManualClock, systemClock, type Clock } from './clock.ts';
export { ServiceAccountIssuer, signJwt, type ServiceAccountTokenOptions, type JwtAlg } from './jwt.ts';
export { multierror } from './errors.ts';
export { Namespace, type KvMount } from './namespace.ts';
export type { RecordedRequest } from './core.ts';
export type { VaultMode } from './health.ts';
export type { Token, CreateTokenOptions } from './tokens.ts';
export type { Lease } from './leases.ts';
export type { PolicyInput, Capability } from './acl.ts';
export type { KubernetesAuthMount, KubernetesAuthConfig } from './kubernetes.ts';
export type { AppRoleMount } from './approle.ts';
export type { DatabaseMount, DatabaseConnectionInput } from './database.ts';
export type { KvV1Mount, KvV2Mount } from './kv.ts';
