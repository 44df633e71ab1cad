// One injector per target, chosen by `inject.kind`.
import type { HttpTargetConfig } from '../../../config/schema.ts';
import { oauth2 } from './oauth2.ts';
import { sigv4 } from './sigv4.ts';
import { basic, bearer, headers, query } from './static.ts';
import type { Injector } from './types.ts';

export type { Injector, Outgoing } from './types.ts';

export function createInjector(name: string, cfg: HttpTargetConfig): Injector {
  const inj = cfg.inject;
  switch (inj.kind) {
    case 'bearer':
      return bearer(inj.token);
    case 'basic':
      return basic(inj.username, inj.password);
    case 'headers':
      return headers(inj.headers);
    case 'query':
      return query(inj.params);
    case 'oauth2':
      return oauth2(name, inj, cfg.upstream.tls.ca, cfg.timeouts);
    case 'aws-sigv4':
      return sigv4(name, inj);
  }
}
