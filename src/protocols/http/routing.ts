// Which target a request is for and where it goes upstream. Reverse mode: the listener's one
// target and its base URL. Forward mode: the request's host (absolute-form URI, else Host) picks
// the target that lists it; a host no target owns is refused rather than passed on bare.
import type { IncomingMessage } from 'node:http';
import type { HttpTargetConfig } from '../../config/schema.ts';
import { KeylessError } from '../../errors.ts';
import type { Route, Target } from '../types.ts';

export interface Routed {
  target: Target;
  cfg: HttpTargetConfig;
  /** `https://host:port` */
  origin: string;
  /** Path and query to send upstream. */
  path: string;
  /** Host header for the upstream. */
  host: string;
}

export function targetsOf(route: Route): Target[] {
  if (route.targets && route.targets.length > 0) return [...route.targets];
  const only = route.resolve(undefined);
  return only ? [only] : [];
}

export function modeOf(route: Route): 'reverse' | 'forward' {
  const first = targetsOf(route)[0];
  return first && (first.config as HttpTargetConfig).mode === 'forward' ? 'forward' : 'reverse';
}

/** Does a `hosts`/`passthrough` entry match this host and port? */
export function hostMatches(entry: string, hostname: string, port: number): boolean {
  const m = /^(.*?)(?::(\d+))?$/.exec(entry)!;
  const [, name = '', p] = m;
  if (p !== undefined && Number(p) !== port) return false;
  if (name.startsWith('*.')) return hostname.endsWith(name.slice(1)) && hostname.length > name.length - 1;
  return name === hostname;
}

/** The target of `route` whose `hosts` (or `passthrough`, for CONNECT) list matches. */
export function ownerOf(route: Route, hostname: string, port: number, list: 'hosts' | 'passthrough'): Target | undefined {
  return targetsOf(route).find((t) => ((t.config as HttpTargetConfig)[list] ?? []).some((e) => hostMatches(e, hostname, port)));
}

export function badRequest(message: string): KeylessError {
  return new KeylessError('KL_ERR_PROTOCOL', `client: ${message}`);
}

/** Parse `host[:port]` (an authority); undefined when malformed. */
export function parseAuthority(authority: string, defaultPort: number): { hostname: string; port: number; explicitPort: boolean } | undefined {
  try {
    const u = new URL(`http://${authority}`);
    if (u.username || u.password || u.pathname !== '/' || u.search || !u.hostname) return undefined;
    const hostname = u.hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1');
    return { hostname, port: u.port ? Number(u.port) : defaultPort, explicitPort: u.port !== '' || /:80$/.test(authority) };
  } catch {
    return undefined;
  }
}

export function routeRequest(route: Route, req: IncomingMessage): Routed {
  const targets = targetsOf(route);
  const raw = req.url ?? '/';
  const absolute = /^https?:\/\//i.test(raw);
  let requestPath = raw;
  let authority = req.headers.host;
  if (absolute) {
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      throw badRequest('malformed absolute-form request target');
    }
    requestPath = `${u.pathname}${u.search}`;
    authority = u.host;
  } else if (!raw.startsWith('/') && raw !== '*') {
    throw badRequest('malformed request target');
  }

  if (modeOf(route) === 'reverse') {
    // The base URL's path is a prefix the app must not climb out of (`/v1/tenant-a` + `/../b`).
    if (hasDotSegment(requestPath)) throw badRequest('dot segments (. or ..) in the request path');
    const target = targets[0];
    if (!target) throw new KeylessError('KL_ERR_UNKNOWN_TARGET', `no target on ${route.listen}`);
    const cfg = target.config as HttpTargetConfig;
    return { target, cfg, ...toBase(cfg.upstream.url!, requestPath) };
  }

  if (!authority) throw badRequest('forward-mode request without a host');
  const parsed = parseAuthority(authority, 80);
  if (!parsed) throw badRequest('malformed host');
  const target = ownerOf(route, parsed.hostname, parsed.port, 'hosts');
  if (!target) {
    throw new KeylessError('KL_ERR_UNKNOWN_TARGET', `no target on ${route.listen} owns host ${authority}`, { clientDetail: JSON.stringify(authority) });
  }
  const cfg = target.config as HttpTargetConfig;
  if (cfg.upstream.url) return { target, cfg, ...toBase(cfg.upstream.url, requestPath) };
  const plain = cfg.upstream.tls.mode === 'disable';
  // The app speaks http:// to Keyless; upstream gets https:// on the same port, 443 for the default 80.
  const port = plain || parsed.port !== 80 ? parsed.port : 443;
  const origin = new URL(`${plain ? 'http' : 'https'}://${parsed.hostname.includes(':') ? `[${parsed.hostname}]` : parsed.hostname}:${port}`);
  return { target, cfg, origin: origin.origin, path: requestPath, host: origin.host };
}

function hasDotSegment(path: string): boolean {
  const q = path.indexOf('?');
  return (q === -1 ? path : path.slice(0, q)).split('/').some((seg) => /^(\.|%2e){1,2}$/i.test(seg));
}

const bases = new Map<string, { origin: string; prefix: string; host: string }>();

function toBase(url: string, requestPath: string): { origin: string; path: string; host: string } {
  let base = bases.get(url);
  if (!base) {
    const u = new URL(url);
    base = { origin: u.origin, prefix: u.pathname.replace(/\/+$/, ''), host: u.host };
    bases.set(url, base);
  }
  const path = requestPath === '*' ? base.prefix || '*' : `${base.prefix}${requestPath}`;
  return { origin: base.origin, path, host: base.host };
}
