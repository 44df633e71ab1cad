import type { StoreConfig } from '../config/schema.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { VaultStore } from './vault/store.ts';
import { EnvStore } from './env.ts';
import { FileStore } from './file.ts';
import type { CredentialStore } from './types.ts';

export function createStore(name: string, cfg: StoreConfig, log: Logger, metrics: Metrics): CredentialStore {
  switch (cfg.kind) {
    case 'vault':
      return new VaultStore(name, cfg, log, metrics);
    case 'file':
      return new FileStore(name, cfg, log);
    case 'env':
      return new EnvStore(name, cfg);
  }
}

export function createStores(cfgs: Record<string, StoreConfig>, log: Logger, metrics: Metrics): Map<string, CredentialStore> {
  return new Map(Object.entries(cfgs).map(([name, cfg]) => [name, createStore(name, cfg, log, metrics)]));
}
