// The deploy/ manifests: every overlay is rendered (with test/support/kustomize.ts, and with
// `kubectl kustomize` too where kubectl is installed, the two required to agree), every object is
// validated against the Kubernetes API schemas (the OpenAPI definitions compiled to JSON-schema
// validators by the kubernetes-models package, plus the unknown-field rejection of
// `kubectl --validate=strict`), and the manifests are checked against the config they carry, read
// with Keyless's own parseConfig: listener ports, admin port and probes, config mount, network
// policy, credential volumes, shutdown timing, security settings, the Dockerfile and the Vault role.
// Each check is a function returning problems; the second half of the file breaks the rendered
// manifests one way at a time and requires the matching check to notice.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import { validate as validateDeployment } from 'kubernetes-models/_schemas/IoK8sApiAppsV1Deployment';
import { validate as validateConfigMap } from 'kubernetes-models/_schemas/IoK8sApiCoreV1ConfigMap';
import { validate as validateService } from 'kubernetes-models/_schemas/IoK8sApiCoreV1Service';
import { validate as validateServiceAccount } from 'kubernetes-models/_schemas/IoK8sApiCoreV1ServiceAccount';
import { validate as validateNetworkPolicy } from 'kubernetes-models/_schemas/IoK8sApiNetworkingV1NetworkPolicy';
import { validate as validatePodDisruptionBudget } from 'kubernetes-models/_schemas/IoK8sApiPolicyV1PodDisruptionBudget';
import { validate as lintDockerfile } from 'dockerfile-utils';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { ConfigError, parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { kustomizeBuild, type KObject } from '../support/kustomize.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const OVERLAYS_DIR = join(ROOT, 'deploy/kustomize/overlays');
const EXAMPLE = join(OVERLAYS_DIR, 'example');
/** Every overlay in the repository, plus one more named by KEYLESS_OVERLAY (a directory). */
const OVERLAYS = [
  ...readdirSync(OVERLAYS_DIR, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => join(OVERLAYS_DIR, d.name)),
  ...(process.env.KEYLESS_OVERLAY ? [process.env.KEYLESS_OVERLAY] : []),
];

const DOCKERFILE = readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8');
const DOCKERIGNORE = readFileSync(join(ROOT, '.dockerignore'), 'utf8');
const VAULT_README = readFileSync(join(ROOT, 'deploy/vault/README.md'), 'utf8');
const VAULT_POLICY = readFileSync(join(ROOT, 'deploy/vault/keyless-policy.hcl'), 'utf8');
const VAULT_REVOKE_POLICY = readFileSync(join(ROOT, 'deploy/vault/keyless-revoke-policy.hcl'), 'utf8');

/** Where the pod finds its Vault login token, as deploy/vault/README.md documents it. */
const VAULT_TOKEN_FILE = '/var/run/secrets/vault/token';
const VAULT_AUDIENCE = 'vault';
const CONFIG_MAP = 'keyless-config';
const CONFIG_KEY = 'keyless.yaml';
const MONITORING_NAMESPACE = 'monitoring';

// ---------------------------------------------------------------------------------------------
// Schema validation

interface SchemaError {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
}
type Validate = (data: unknown) => boolean;

const SCHEMAS: Record<string, Validate> = {
  'v1/ServiceAccount': validateServiceAccount,
  'v1/ConfigMap': validateConfigMap,
  'v1/Service': validateService,
  'apps/v1/Deployment': validateDeployment,
  'networking.k8s.io/v1/NetworkPolicy': validateNetworkPolicy,
  'policy/v1/PodDisruptionBudget': validatePodDisruptionBudget,
};

/**
 * Validates one object against its kind's schema, strictly: besides the schema's own errors, a field
 * the schema does not define is an error, as `kubectl apply --validate=strict` and kubeconform
 * -strict make it (the API server would otherwise drop it silently, e.g. a misspelt
 * `readOnlyRootFileSystem`). The compiled schemas leave additionalProperties open, so the object is
 * handed to the validator through proxies that record every field the validator reads: a schema
 * reads exactly the properties it declares (and every entry of a map-typed field), so a field
 * never read is one the schema does not know.
 */
function schemaProblems(obj: KObject): string[] {
  const id = `${obj.apiVersion}/${obj.kind}`;
  const validate = SCHEMAS[id];
  if (!validate) return [`${id} ${obj.metadata?.name}: no schema for this kind here (add it to SCHEMAS)`];
  const read = new Set<string>();
  const wrap = (v: unknown, path: string): unknown => {
    if (typeof v !== 'object' || v === null) return v;
    return new Proxy(v, {
      get(target, prop, receiver) {
        const value: unknown = Reflect.get(target, prop, receiver);
        if (typeof prop !== 'string' || !Object.hasOwn(target, prop)) return value;
        if (Array.isArray(target) && !/^\d+$/.test(prop)) return value;
        read.add(`${path}/${prop}`);
        return wrap(value, `${path}/${prop}`);
      },
    });
  };
  const problems: string[] = [];
  const where = `${obj.kind}/${obj.metadata?.name}`;
  if (!validate(wrap(obj, ''))) {
    for (const e of ((validate as unknown as { errors?: SchemaError[] | null }).errors ?? [])) {
      problems.push(`${where}${e.instancePath || '/'}: ${e.keyword} ${JSON.stringify(e.params)}`);
    }
  }
  const walk = (v: unknown, path: string): void => {
    if (Array.isArray(v)) v.forEach((e, i) => walk(e, `${path}/${i}`));
    else if (typeof v === 'object' && v !== null) {
      for (const [k, e] of Object.entries(v)) {
        const p = `${path}/${k}`;
        if (!read.has(p)) problems.push(`${where}${p}: unknown field "${k}"`);
        else walk(e, p);
      }
    }
  };
  walk(obj, '');
  return problems;
}

// ---------------------------------------------------------------------------------------------
// The rendered manifests, located

interface Rendered {
  objects: KObject[];
  deployment: IDeployment;
  pod: IPodSpec;
  container: IContainer;
  podLabels: Record<string, string>;
  service: IService | undefined;
  policies: INetworkPolicy[];
  pdb: IPodDisruptionBudget | undefined;
  configMap: IConfigMap | undefined;
  /** Parsed with the project's own parseConfig; undefined when it does not parse (see configProblems). */
  config: Config | undefined;
  configError: string | undefined;
}

function analyse(objects: KObject[]): Rendered {
  const deployments = objects.filter((o) => o.kind === 'Deployment');
  if (deployments.length !== 1) throw new Error(`expected one Deployment, found ${deployments.length}`);
  const deployment = deployments[0] as unknown as IDeployment;
  const pod = deployment.spec?.template.spec;
  if (!pod) throw new Error('the Deployment has no pod template');
  const container = pod.containers.find((c) => c.name === 'keyless');
  if (!container) throw new Error('the Deployment has no container named keyless');
  const configMap = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === CONFIG_MAP) as IConfigMap | undefined;
  let config: Config | undefined;
  let configError: string | undefined;
  const text = configMap?.data?.[CONFIG_KEY];
  if (text === undefined) configError = `no ConfigMap ${CONFIG_MAP} with a ${CONFIG_KEY} key`;
  else {
    try {
      config = parseConfig(text, `ConfigMap ${CONFIG_MAP}/${CONFIG_KEY}`);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      configError = err.message;
    }
  }
  return {
    objects,
    deployment,
    pod,
    container,
    podLabels: (deployment.spec?.template.metadata?.labels ?? {}) as Record<string, string>,
    service: objects.find((o) => o.kind === 'Service' && o.metadata.name === 'keyless') as IService | undefined,
    policies: objects.filter((o) => o.kind === 'NetworkPolicy') as unknown as INetworkPolicy[],
    pdb: objects.find((o) => o.kind === 'PodDisruptionBudget') as IPodDisruptionBudget | undefined,
    configMap,
    config,
    configError,
  };
}

const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '']);

/** A port as a probe, Service targetPort or NetworkPolicy names it: a number, or a container port's name. */
function resolvePort(c: IContainer, ref: number | string | undefined): number | undefined {
  if (typeof ref === 'number') return ref;
  if (ref === undefined) return undefined;
  if (/^\d+$/.test(ref)) return Number(ref);
  return c.ports?.find((p) => p.name === ref)?.containerPort;
}

/** Distinct listen addresses of the config: targets sharing one form one listener. */
function listeners(cfg: Config): { host: string; port: number; targets: string[] }[] {
  const byPort = new Map<string, { host: string; port: number; targets: string[] }>();
  for (const [name, t] of Object.entries(cfg.targets)) {
    const key = `${t.listen.host}:${t.listen.port}`;
    const l = byPort.get(key) ?? { host: t.listen.host, port: t.listen.port, targets: [] };
    l.targets.push(name);
    byPort.set(key, l);
  }
  return [...byPort.values()];
}

/**
 * The TCP ports a target connects to upstream: its `port`, its URL's port (http), or the ports of
 * the hosts a forward-mode http target owns or tunnels to. Read loosely, so that protocols added to
 * the schema later are still covered where they use these shapes.
 */
function upstreamPorts(t: Config['targets'][string]): number[] {
  const u = t.upstream as { port?: unknown; url?: unknown };
  if (typeof u.port === 'number') return [u.port];
  if (typeof u.url === 'string') {
    const url = new URL(u.url);
    return [Number(url.port) || (url.protocol === 'http:' ? 80 : 443)];
  }
  const hosts = [(t as { hosts?: unknown }).hosts, (t as { passthrough?: unknown }).passthrough].flatMap((h) => (Array.isArray(h) ? (h as string[]) : []));
  return hosts.map((h) => Number(/:(\d+)$/.exec(h)?.[1] ?? 443));
}

/** Stores reached over the network (Vault): their `address` URL's port. */
function storePorts(cfg: Config): [string, number][] {
  const out: [string, number][] = [];
  for (const [name, store] of Object.entries(cfg.stores)) {
    const address = (store as { address?: unknown }).address;
    if (typeof address === 'string') {
      const url = new URL(address);
      out.push([name, Number(url.port) || (url.protocol === 'http:' ? 80 : 443)]);
    }
  }
  return out;
}

/** The config file path in the container's arguments (`run --config FILE`, `--config=FILE` or `run FILE`). */
function configPathOf(c: IContainer): string | undefined {
  const args = [...(c.command ?? []), ...(c.args ?? [])];
  const i = args.findIndex((a) => a === '--config' || a === '-c');
  if (i >= 0) return args[i + 1];
  const eq = args.find((a) => a.startsWith('--config='));
  if (eq) return eq.slice('--config='.length);
  const run = args.indexOf('run');
  return run >= 0 ? args[run + 1] : undefined;
}

function mountFor(r: Rendered, file: string): { mountPath: string; name: string; subPath?: string; rel: string } | undefined {
  let best: { mountPath: string; name: string; subPath?: string; rel: string } | undefined;
  for (const m of r.container.volumeMounts ?? []) {
    const dir = m.mountPath.replace(/\/+$/, '');
    if (file === dir || file.startsWith(`${dir}/`)) {
      if (!best || dir.length > best.mountPath.length) best = { mountPath: dir, name: m.name, subPath: m.subPath, rel: posix.relative(dir, file) };
    }
  }
  return best;
}

function volume(r: Rendered, name: string): IVolume | undefined {
  return r.pod.volumes?.find((v) => v.name === name);
}

/** The ConfigMap (name and key) that provides file `rel` inside a configMap or projected volume. */
function configMapSource(v: IVolume, rel: string): { name: string; key: string } | undefined {
  const sources = v.configMap ? [v.configMap] : (v.projected?.sources ?? []).flatMap((s) => (s.configMap ? [s.configMap] : []));
  for (const s of sources) {
    if (!s.name) continue;
    if (s.items) {
      const item = s.items.find((i) => i.path === rel);
      if (item) return { name: s.name, key: item.key };
    } else if (!rel.includes('/')) {
      return { name: s.name, key: rel };
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// The checks. Each returns the problems it finds; none means the manifests agree on that point.

function configProblems(r: Rendered): string[] {
  return r.configError ? [r.configError] : [];
}

/** Each listener is a TCP containerPort and a Service port routed to it; the Service has no other port. */
function listenerProblems(r: Rendered): string[] {
  if (!r.config) return [];
  const problems: string[] = [];
  const ls = listeners(r.config);
  for (const l of ls) {
    const what = `listener ${l.host}:${l.port} (${l.targets.join(', ')})`;
    if (!WILDCARD_HOSTS.has(l.host)) problems.push(`${what}: listens on ${l.host} only; in a pod it must be 0.0.0.0 for the Service to reach it`);
    if (l.port === r.config.admin.listen.port) problems.push(`${what}: same port as the admin server`);
    if (!r.container.ports?.some((p) => p.containerPort === l.port && (p.protocol ?? 'TCP') === 'TCP')) {
      problems.push(`${what}: no TCP containerPort ${l.port} on the keyless container`);
    }
    const sp = r.service?.spec?.ports?.find((p) => p.port === l.port && (p.protocol ?? 'TCP') === 'TCP');
    if (!sp) problems.push(`${what}: no Service port ${l.port}`);
    else if (resolvePort(r.container, sp.targetPort ?? sp.port) !== l.port) {
      problems.push(`${what}: Service port ${l.port} targets ${String(sp.targetPort)}, which is not container port ${l.port}`);
    }
  }
  for (const sp of r.service?.spec?.ports ?? []) {
    if (!ls.some((l) => l.port === sp.port)) problems.push(`Service port ${sp.port} (${sp.name ?? 'unnamed'}) is no listener in keyless.yaml`);
  }
  if (!r.service) problems.push('no Service named keyless');
  else {
    const sel = r.service.spec?.selector ?? {};
    if (Object.keys(sel).length === 0 || !Object.entries(sel).every(([k, v]) => r.podLabels[k] === v)) problems.push('the Service selector does not select the Keyless pods');
  }
  return problems;
}

/** The admin server is reachable from outside the pod and is what the probes and Prometheus use. */
function adminProblems(r: Rendered): string[] {
  if (!r.config) return [];
  const problems: string[] = [];
  const admin = r.config.admin.listen;
  if (!WILDCARD_HOSTS.has(admin.host)) problems.push(`admin.listen is ${admin.host}:${admin.port}; the kubelet's probes cannot reach it: use 0.0.0.0:${admin.port}`);
  if (!r.container.ports?.some((p) => p.containerPort === admin.port)) problems.push(`no containerPort for the admin port ${admin.port}`);
  const probes = [
    ['livenessProbe', r.container.livenessProbe, '/healthz'],
    ['readinessProbe', r.container.readinessProbe, '/readyz'],
  ] as const;
  for (const [name, probe, path] of probes) {
    if (!probe?.httpGet) {
      problems.push(`${name}: missing (expected GET ${path} on the admin port)`);
      continue;
    }
    if (probe.httpGet.path !== path) problems.push(`${name}: path ${String(probe.httpGet.path)}, expected ${path}`);
    const port = resolvePort(r.container, probe.httpGet.port);
    if (port !== admin.port) problems.push(`${name}: port ${String(probe.httpGet.port)} is ${String(port)}, not the admin port ${admin.port}`);
    if (probe.httpGet.scheme && probe.httpGet.scheme !== 'HTTP') problems.push(`${name}: the admin server speaks HTTP`);
  }
  const annotated = r.deployment.spec?.template.metadata?.annotations?.['prometheus.io/port'];
  if (annotated !== undefined && annotated !== String(admin.port)) problems.push(`prometheus.io/port is ${annotated}, not the admin port ${admin.port}`);
  return problems;
}

/** The container's --config file is the ConfigMap's keyless.yaml, mounted so updates reach the pod. */
function configMountProblems(r: Rendered): string[] {
  const file = configPathOf(r.container);
  if (!file) return ['the container arguments name no config file (run --config FILE)'];
  if (!file.startsWith('/')) return [`config path ${file} is relative`];
  const m = mountFor(r, file);
  if (!m) return [`config path ${file} is in no volume mount`];
  const problems: string[] = [];
  if (m.subPath) problems.push(`config mount ${m.mountPath} uses subPath: ConfigMap updates would never reach the pod`);
  const v = volume(r, m.name);
  const src = v ? configMapSource(v, m.rel) : undefined;
  if (!src) problems.push(`config path ${file}: volume ${m.name} at ${m.mountPath} provides no ${m.rel} from a ConfigMap`);
  else if (src.name !== CONFIG_MAP || src.key !== CONFIG_KEY) problems.push(`config path ${file} is ConfigMap ${src.name} key ${src.key}, not ${CONFIG_MAP}/${CONFIG_KEY}`);
  const cm = src && r.objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === src.name);
  if (src && !cm) problems.push(`ConfigMap ${src.name} is not in the manifests`);
  return problems;
}

function selecting(r: Rendered): INetworkPolicy[] {
  return r.policies.filter((p) => {
    const sel = p.spec?.podSelector;
    if (!sel || sel.matchExpressions?.length) return false;
    return Object.entries(sel.matchLabels ?? {}).every(([k, v]) => r.podLabels[k] === v);
  });
}

type Rule = { ports?: { port?: number | string; endPort?: number; protocol?: string }[] };

function allows(r: Rendered, rule: Rule, port: number, protocol = 'TCP'): boolean {
  if (!rule.ports || rule.ports.length === 0) return true;
  return rule.ports.some((p) => {
    if ((p.protocol ?? 'TCP') !== protocol) return false;
    if (p.port === undefined) return true;
    const n = resolvePort(r.container, p.port);
    return n !== undefined && (p.endPort === undefined ? n === port : n <= port && port <= p.endPort);
  });
}

/**
 * Ingress: listener ports from this namespace's pods only, the admin port from the monitoring
 * namespace. Egress: restricted, with DNS and each upstream's port allowed.
 */
function networkPolicyProblems(r: Rendered): string[] {
  if (!r.config) return [];
  const problems: string[] = [];
  const policies = selecting(r);
  const types = (p: INetworkPolicy): string[] => p.spec?.policyTypes ?? (p.spec?.egress ? ['Ingress', 'Egress'] : ['Ingress']);
  const ingress = policies.filter((p) => types(p).includes('Ingress')).flatMap((p) => p.spec?.ingress ?? []);
  const egress = policies.filter((p) => types(p).includes('Egress')).flatMap((p) => p.spec?.egress ?? []);
  if (!policies.some((p) => types(p).includes('Ingress'))) problems.push('no NetworkPolicy restricts ingress to the Keyless pods');
  if (!policies.some((p) => types(p).includes('Egress'))) problems.push('no NetworkPolicy restricts egress from the Keyless pods');

  for (const l of listeners(r.config)) {
    const rules = ingress.filter((rule) => allows(r, rule, l.port));
    if (rules.length === 0) problems.push(`listener port ${l.port} (${l.targets.join(', ')}): no NetworkPolicy ingress rule opens it`);
    for (const rule of rules) {
      if (!rule.from || rule.from.length === 0) problems.push(`listener port ${l.port}: an ingress rule opens it to every source`);
      for (const peer of rule.from ?? []) {
        if (peer.namespaceSelector || peer.ipBlock || !peer.podSelector) problems.push(`listener port ${l.port}: an ingress rule opens it beyond the namespace's own pods (${JSON.stringify(peer)})`);
      }
    }
  }
  const adminPort = r.config.admin.listen.port;
  const adminRules = ingress.filter((rule) => allows(r, rule, adminPort));
  const fromMonitoring = adminRules.some((rule) =>
    (rule.from ?? []).some((peer) => peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === MONITORING_NAMESPACE),
  );
  if (!fromMonitoring) problems.push(`admin port ${adminPort}: no ingress rule from the ${MONITORING_NAMESPACE} namespace (Prometheus)`);
  if (adminRules.some((rule) => !rule.from || rule.from.length === 0)) problems.push(`admin port ${adminPort}: an ingress rule opens it to every source`);

  if (!egress.some((rule) => allows(r, rule, 53, 'UDP'))) problems.push('egress: DNS (UDP 53) is not allowed');
  for (const [name, t] of Object.entries(r.config.targets)) {
    for (const port of upstreamPorts(t)) {
      if (!egress.some((rule) => allows(r, rule, port))) problems.push(`egress: target ${name}'s upstream port ${port} is not allowed`);
    }
  }
  for (const [name, port] of storePorts(r.config)) {
    if (!egress.some((rule) => allows(r, rule, port))) problems.push(`egress: store ${name}'s port ${port} is not allowed`);
  }
  return problems;
}

/**
 * A `file` store's credential is a Secret volume mounted at <dir>/<path>, without subPath; every
 * other file the config names lies in some volume (the root filesystem is read-only and the image
 * ships none of them).
 */
function fileProblems(r: Rendered): string[] {
  if (!r.config) return [];
  const problems: string[] = [];
  for (const [name, t] of Object.entries(r.config.targets)) {
    const store = r.config.stores[t.credential.store];
    if (store?.kind !== 'file') continue;
    const want = posix.join(store.dir, t.credential.path);
    const m = r.container.volumeMounts?.find((vm) => vm.mountPath.replace(/\/+$/, '') === want);
    if (!m) {
      problems.push(`target ${name}: no volume mounted at ${want} (store ${t.credential.store}, path ${t.credential.path})`);
      continue;
    }
    if (m.subPath) problems.push(`target ${name}: ${want} uses subPath, so Secret updates never reach the pod`);
    const v = volume(r, m.name);
    const isSecret = v?.secret !== undefined || (v?.projected?.sources?.length ?? 0) > 0 && v?.projected?.sources?.every((s) => s.secret) === true;
    if (!isSecret) problems.push(`target ${name}: volume ${m.name} at ${want} is not a Secret volume`);
  }
  // A Vault store logging in with Kubernetes auth must use the projected token with audience
  // "vault"; the default ServiceAccount token is not mounted (and is meant for the API server).
  for (const [name, store] of Object.entries(r.config.stores)) {
    const s = store as { kind: string; auth?: { method?: string; tokenFile?: string } };
    if (s.kind === 'vault' && s.auth?.method === 'kubernetes' && s.auth.tokenFile !== VAULT_TOKEN_FILE) {
      problems.push(`stores.${name}.auth.tokenFile is ${String(s.auth.tokenFile)}; the pod's Vault token is ${VAULT_TOKEN_FILE}`);
    }
  }
  // Every absolute path in the parsed config is a file Keyless reads (CA bundles, listener
  // certificates, pinned keys, token files): it must come from a volume. A file store's `dir` is
  // the exception, checked above credential by credential.
  const walk = (v: unknown, path: string[]): void => {
    if (typeof v === 'string') {
      const isStoreDir = path.length === 3 && path[0] === 'stores' && path[2] === 'dir';
      if (v.startsWith('/') && !isStoreDir && !mountFor(r, v)) problems.push(`${path.join('.')}: ${v} is in no volume mount`);
    } else if (Array.isArray(v)) v.forEach((e, i) => walk(e, [...path, String(i)]));
    else if (typeof v === 'object' && v !== null) for (const [k, e] of Object.entries(v)) walk(e, [...path, k]);
  };
  walk(r.config, []);
  return problems;
}

/** Kubernetes waits long enough for the preStop pause and Keyless's own drain. */
function shutdownProblems(r: Rendered): string[] {
  if (!r.config) return [];
  const grace = (r.pod.terminationGracePeriodSeconds ?? 30) * 1000;
  const preStop = (r.container.lifecycle?.preStop?.sleep?.seconds ?? 0) * 1000;
  const need = preStop + r.config.drainTimeout;
  return grace > need ? [] : [`terminationGracePeriodSeconds (${grace / 1000} s) must exceed preStop (${preStop / 1000} s) + drainTimeout (${r.config.drainTimeout / 1000} s)`];
}

/** The hardening and availability settings, and the Vault token projection. */
function podProblems(r: Rendered): string[] {
  const problems: string[] = [];
  const sc = r.container.securityContext ?? {};
  const psc = r.pod.securityContext ?? {};
  if ((sc.runAsNonRoot ?? psc.runAsNonRoot) !== true) problems.push('runAsNonRoot is not true');
  const uid = sc.runAsUser ?? psc.runAsUser;
  if (uid === undefined || uid === 0) problems.push('runAsUser is not a non-zero numeric UID');
  if (sc.readOnlyRootFilesystem !== true) problems.push('readOnlyRootFilesystem is not true');
  if (sc.allowPrivilegeEscalation !== false) problems.push('allowPrivilegeEscalation is not false');
  if (sc.privileged === true) problems.push('privileged');
  if (!sc.capabilities?.drop?.includes('ALL')) problems.push('capabilities do not drop ALL');
  if ((sc.capabilities?.add ?? []).length > 0) problems.push('capabilities are added');
  if ((sc.seccompProfile ?? psc.seccompProfile)?.type !== 'RuntimeDefault') problems.push('seccompProfile is not RuntimeDefault');
  if (r.pod.automountServiceAccountToken !== false) problems.push('the Kubernetes API token is mounted (automountServiceAccountToken is not false)');
  if (r.pod.hostNetwork || r.pod.hostPID || r.pod.hostIPC) problems.push('host namespaces are shared');

  if ((r.deployment.spec?.replicas ?? 1) < 2) problems.push(`replicas is ${r.deployment.spec?.replicas ?? 1}, expected at least 2`);
  const res = r.container.resources;
  if (!res?.requests?.cpu || !res.requests.memory || !res.limits?.memory) problems.push('resources: cpu and memory requests and a memory limit are required');
  const spreadsOverNodes =
    (r.pod.topologySpreadConstraints ?? []).some((t) => t.topologyKey === 'kubernetes.io/hostname') ||
    (r.pod.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? []).some((t) => t.podAffinityTerm.topologyKey === 'kubernetes.io/hostname') ||
    (r.pod.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? []).some((t) => t.topologyKey === 'kubernetes.io/hostname');
  if (!spreadsOverNodes) problems.push('the replicas are not spread over nodes (topologySpreadConstraints or podAntiAffinity on kubernetes.io/hostname)');

  if (!r.pdb) problems.push('no PodDisruptionBudget');
  else {
    if (r.pdb.spec?.minAvailable !== 1) problems.push(`PodDisruptionBudget minAvailable is ${String(r.pdb.spec?.minAvailable)}, expected 1`);
    const sel = r.pdb.spec?.selector?.matchLabels ?? {};
    if (Object.keys(sel).length === 0 || !Object.entries(sel).every(([k, v]) => r.podLabels[k] === v)) problems.push('the PodDisruptionBudget does not select the Keyless pods');
  }
  const sa = r.pod.serviceAccountName;
  if (!sa || !r.objects.some((o) => o.kind === 'ServiceAccount' && o.metadata.name === sa)) problems.push(`ServiceAccount ${String(sa)} is not in the manifests`);

  const m = mountFor(r, VAULT_TOKEN_FILE);
  const token = m && volume(r, m.name)?.projected?.sources?.find((s) => s.serviceAccountToken?.path === m.rel)?.serviceAccountToken;
  if (!m || !token) problems.push(`no projected ServiceAccount token at ${VAULT_TOKEN_FILE}`);
  else {
    if (token.audience !== VAULT_AUDIENCE) problems.push(`the Vault token's audience is ${String(token.audience)}, expected ${VAULT_AUDIENCE}`);
    if ((token.expirationSeconds ?? 3600) > 3600) problems.push(`the Vault token lives ${token.expirationSeconds} s; keep it short (at most 3600)`);
    if (m.subPath) problems.push('the Vault token is mounted with subPath, so the kubelet\'s refreshed token never reaches the pod');
  }
  return problems;
}

/** References, never values: no Secret objects, no literal secret-looking env values, no key material. */
function secretValueProblems(r: Rendered): string[] {
  const problems: string[] = [];
  for (const o of r.objects) if (o.kind === 'Secret') problems.push(`Secret ${o.metadata.name}: the manifests must not carry secret values`);
  for (const c of [...r.pod.containers, ...(r.pod.initContainers ?? [])]) {
    for (const e of c.env ?? []) {
      if (e.value !== undefined && /pass|secret|token|key|credential/i.test(e.name)) problems.push(`env ${e.name} of ${c.name} has a literal value`);
    }
  }
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(JSON.stringify(r.objects))) problems.push('a private key is in the manifests');
  return problems;
}

const CHECKS = {
  config: configProblems,
  listeners: listenerProblems,
  admin: adminProblems,
  configMount: configMountProblems,
  networkPolicy: networkPolicyProblems,
  files: fileProblems,
  shutdown: shutdownProblems,
  pod: podProblems,
  secretValues: secretValueProblems,
} as const;

// ---------------------------------------------------------------------------------------------
// The Dockerfile and .dockerignore

interface Instruction {
  op: string;
  args: string;
}

function dockerInstructions(text: string): Instruction[][] {
  const lines = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const stages: Instruction[][] = [];
  const globalArgs = new Map<string, string>();
  for (const line of lines) {
    const m = /^(\S+)\s*(.*)$/.exec(line)!;
    const op = m[1]!.toUpperCase();
    let args = m[2]!.trim();
    if (op === 'ARG' && stages.length === 0) {
      const [k, v] = args.split('=');
      if (k && v !== undefined) globalArgs.set(k, v);
      continue;
    }
    if (op === 'FROM') {
      args = args.replace(/\$\{(\w+)\}|\$(\w+)/g, (_s, a: string | undefined, b: string | undefined) => globalArgs.get(a ?? b ?? '') ?? '');
      stages.push([]);
    }
    if (stages.length === 0) throw new Error(`Dockerfile: ${op} before FROM`);
    stages.at(-1)!.push({ op, args });
  }
  return stages;
}

function dockerfileProblems(text: string, r: Rendered): string[] {
  // Syntax and instruction arguments, by the linter of the Docker language server (no Docker engine
  // runs here to build the image).
  const problems: string[] = lintDockerfile(text).map((d) => `Dockerfile line ${d.range.start.line + 1}: ${d.message}`);
  const stages = dockerInstructions(text);
  if (stages.length < 2) problems.push('not a multi-stage build');
  for (const s of stages) {
    const from = s[0]!.args.split(/\s+/)[0]!;
    if (!/^node:24([.-]|$)/.test(from) && !/^node:24\b/.test(from)) problems.push(`FROM ${from}: expected a node:24 (LTS) image`);
  }
  const runs = (s: Instruction[]): string[] => s.filter((i) => i.op === 'RUN').map((i) => i.args);
  const build = stages.slice(0, -1).flatMap(runs);
  if (!build.some((a) => /\bnpm ci\b/.test(a))) problems.push('the build stage does not run npm ci');
  if (!build.some((a) => /\bnpm run build\b/.test(a))) problems.push('the build stage does not run npm run build');
  const final = stages.at(-1) ?? [];
  const finalRuns = runs(final);
  if (!finalRuns.some((a) => /\bnpm ci\b[^&;]*--omit=dev/.test(a))) problems.push('the final stage does not install production dependencies only (npm ci --omit=dev)');
  if (finalRuns.some((a) => /\bnpm (ci|install)\b(?![^&;]*--omit=dev)/.test(a))) problems.push('the final stage installs dev dependencies');
  if (!final.some((i) => i.op === 'COPY' && /--from=\S+/.test(i.args) && /\bdist\b/.test(i.args))) problems.push('the final stage does not copy dist/ from the build stage');
  const user = final.filter((i) => i.op === 'USER').at(-1)?.args;
  const uid = user ? /^(\d+)(?::(\d+))?$/.exec(user) : null;
  if (!uid) problems.push(`USER ${String(user)}: expected a numeric UID (runAsNonRoot can verify only a number)`);
  else {
    if (Number(uid[1]) === 0) problems.push('USER is root');
    const podUid = r.container.securityContext?.runAsUser ?? r.pod.securityContext?.runAsUser;
    if (podUid !== undefined && podUid !== Number(uid[1])) problems.push(`USER ${uid[1]} differs from the Deployment's runAsUser ${podUid}`);
  }
  if (!final.some((i) => i.op === 'ENV' && /\bNODE_ENV=production\b/.test(i.args))) problems.push('NODE_ENV=production is not set');
  const exec = (op: string): string[] | undefined => {
    const i = final.filter((x) => x.op === op).at(-1);
    try {
      return i ? (JSON.parse(i.args) as string[]) : undefined;
    } catch {
      return undefined;
    }
  };
  if (JSON.stringify(exec('ENTRYPOINT')) !== JSON.stringify(['node', 'dist/main.js'])) problems.push('ENTRYPOINT is not ["node", "dist/main.js"]');
  const cmd = exec('CMD');
  if (JSON.stringify(cmd) !== JSON.stringify(['run', '--config', '/etc/keyless/keyless.yaml'])) problems.push('CMD is not ["run", "--config", "/etc/keyless/keyless.yaml"]');
  const cmdConfig = cmd?.[2];
  const depConfig = configPathOf(r.container);
  if (cmdConfig !== undefined && depConfig !== undefined && cmdConfig !== depConfig) problems.push(`CMD's config ${cmdConfig} differs from the Deployment's ${depConfig}`);
  const exposed = final.filter((i) => i.op === 'EXPOSE').flatMap((i) => i.args.split(/\s+/)).map((p) => Number(p.split('/')[0]));
  if (r.config && !exposed.includes(r.config.admin.listen.port)) problems.push(`EXPOSE lacks the admin port ${r.config.admin.listen.port}`);
  return problems;
}

/** .dockerignore semantics: patterns in order, the last match wins, `!` re-includes; a match on a parent directory counts. */
function dockerIgnored(ignore: string, path: string): boolean {
  const patterns = ignore.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const GLOB: Record<string, string> = { '**/': '(?:.*/)?', '**': '.*', '*': '[^/]*', '?': '[^/]' };
  const toRegex = (p: string): RegExp => {
    const body = p
      .replace(/^\.?\//, '')
      .replace(/\/+$/, '')
      .split(/(\*\*\/?|\*|\?)/)
      .map((part) => GLOB[part] ?? part.replace(/[.+^${}()|[\]\\]/g, '\\$&'))
      .join('');
    return new RegExp(`^${body}$`);
  };
  const segments = path.split('/');
  const candidates = segments.map((_s, i) => segments.slice(0, i + 1).join('/'));
  let ignored = false;
  for (const raw of patterns) {
    const negate = raw.startsWith('!');
    const re = toRegex(negate ? raw.slice(1) : raw);
    if (candidates.some((c) => re.test(c))) ignored = !negate;
  }
  return ignored;
}

function dockerignoreProblems(ignore: string, dockerfile: string): string[] {
  const problems: string[] = [];
  const sources = dockerInstructions(dockerfile)
    .flat()
    .filter((i) => (i.op === 'COPY' || i.op === 'ADD') && !/--from=/.test(i.args))
    .flatMap((i) => i.args.split(/\s+/).filter((a) => !a.startsWith('--')).slice(0, -1));
  const probe = (s: string): string => (s === 'src' ? 'src/main.ts' : s);
  for (const s of sources) if (dockerIgnored(ignore, probe(s))) problems.push(`.dockerignore excludes ${s}, which the Dockerfile copies`);
  for (const p of ['node_modules/pino/package.json', 'dist/main.js', '.git/HEAD', 'config/secrets/local-postgres/username', 'test/support/tls.ts', '.env']) {
    if (!dockerIgnored(ignore, p)) problems.push(`.dockerignore lets ${p} into the build context`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// The Vault role and policies

function vaultRoleCommand(readme: string): Map<string, string> | undefined {
  const joined = readme.replace(/\\\r?\n\s*/g, ' ');
  const line = joined.split(/\r?\n/).find((l) => /^\s*vault write auth\/kubernetes\/role\/\S+/.test(l));
  if (!line) return undefined;
  const args = new Map<string, string>();
  for (const tok of line.trim().split(/\s+/).slice(2)) {
    const eq = tok.indexOf('=');
    if (eq > 0) args.set(tok.slice(0, eq), tok.slice(eq + 1));
    else args.set('$path', tok);
  }
  return args;
}

function hclPolicy(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of text.replace(/#.*$/gm, '').matchAll(/path\s+"([^"]+)"\s*\{\s*capabilities\s*=\s*\[([^\]]*)\]\s*\}/g)) {
    out.set(m[1]!, [...m[2]!.matchAll(/"([^"]+)"/g)].map((c) => c[1]!));
  }
  return out;
}

/** Vault's ACL path match: `+` is one segment, a trailing `*` a prefix; otherwise exact. */
function grants(policy: Map<string, string[]>, path: string, capability: string): boolean {
  for (const [pattern, caps] of policy) {
    if (!caps.includes(capability)) continue;
    const glob = pattern.endsWith('*');
    const re = new RegExp(`^${pattern.replace(/\*$/, '').split('+').map((s) => s.replace(/[.+^${}()|[\]\\]/g, '\\$&')).join('[^/]+')}${glob ? '' : '$'}`);
    if (re.test(path)) return true;
  }
  return false;
}

function vaultProblems(readme: string, policyText: string, revokeText: string, r: Rendered): string[] {
  const problems: string[] = [];
  const role = vaultRoleCommand(readme);
  const namespace = r.deployment.metadata?.namespace;
  if (!role) return ['deploy/vault/README.md has no `vault write auth/kubernetes/role/...` command'];
  const list = (k: string): string[] => (role.get(k) ?? '').split(',').filter((s) => s !== '');
  if (!list('bound_service_account_names').includes(r.pod.serviceAccountName ?? '')) {
    problems.push(`the Vault role binds ServiceAccount ${list('bound_service_account_names').join(',')}, the pods run as ${String(r.pod.serviceAccountName)}`);
  }
  if (namespace && !list('bound_service_account_namespaces').includes(namespace)) {
    problems.push(`the Vault role binds namespace ${list('bound_service_account_namespaces').join(',')}, the manifests deploy to ${namespace}`);
  }
  const m = mountFor(r, VAULT_TOKEN_FILE);
  const audience = m && volume(r, m.name)?.projected?.sources?.find((s) => s.serviceAccountToken)?.serviceAccountToken?.audience;
  if (role.get('audience') !== audience) problems.push(`the Vault role's audience ${String(role.get('audience'))} is not the projected token's ${String(audience)}`);
  const written = [...readme.matchAll(/vault policy write (\S+) \S*keyless-policy\.hcl/g)].map((x) => x[1]!);
  if (written.length === 0 || !written.every((p) => list('token_policies').includes(p))) problems.push(`token_policies ${list('token_policies').join(',')} lacks the policy written from keyless-policy.hcl (${written.join(',')})`);

  const policy = hclPolicy(policyText);
  const ns = namespace ?? 'payments';
  const needed: [string, string][] = [
    [`secret/data/${ns}/stripe`, 'read'],
    [`database/creds/${ns}-orders-rw`, 'read'],
    ['sys/leases/renew', 'update'],
    ['auth/token/renew-self', 'update'],
    ['auth/token/lookup-self', 'read'],
  ];
  for (const [path, cap] of needed) if (!grants(policy, path, cap)) problems.push(`keyless-policy.hcl does not grant ${cap} on ${path}`);
  for (const [path, cap] of [[`database/creds/other-${ns}-orders-rw`, 'read'], [`secret/data/other-${ns}/x`, 'read'], ['sys/leases/revoke', 'update']] as const) {
    if (grants(policy, path, cap)) problems.push(`keyless-policy.hcl grants ${cap} on ${path}, beyond the namespace's needs`);
  }
  if (!grants(hclPolicy(revokeText), 'sys/leases/revoke', 'update')) problems.push('keyless-revoke-policy.hcl does not grant update on sys/leases/revoke');
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Rendering

function kubectlAvailable(): boolean {
  const r = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
  return r.status === 0;
}

function kubectlKustomize(dir: string): KObject[] {
  const r = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`kubectl kustomize ${dir}: ${r.stderr}`);
  return parseAllDocuments(r.stdout).map((d) => d.toJS() as KObject).filter((o) => o !== null);
}

function byId(objects: KObject[]): Map<string, KObject> {
  return new Map(objects.map((o) => [`${o.apiVersion}/${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`, o]));
}

const HAVE_KUBECTL = kubectlAvailable();

// ---------------------------------------------------------------------------------------------

describe.each(OVERLAYS.map((dir) => [posix.relative(ROOT, dir) || dir, dir]))('overlay %s', (_name, dir) => {
  const objects = kustomizeBuild(dir);
  const r = analyse(structuredClone(objects));

  it('renders the expected objects', () => {
    const kinds = objects.map((o) => o.kind).sort();
    for (const kind of ['ConfigMap', 'Deployment', 'NetworkPolicy', 'PodDisruptionBudget', 'Service', 'ServiceAccount']) expect(kinds).toContain(kind);
    const namespaces = new Set(objects.map((o) => o.metadata.namespace));
    expect(namespaces.size, 'every object in one namespace').toBe(1);
    expect([...namespaces][0], 'the overlay sets a namespace').toBeTruthy();
  });

  it.skipIf(!HAVE_KUBECTL)('renders exactly as kubectl kustomize does', () => {
    const ours = byId(objects);
    const theirs = byId(kubectlKustomize(dir));
    expect([...ours.keys()].sort()).toEqual([...theirs.keys()].sort());
    for (const [id, o] of theirs) expect(ours.get(id), id).toEqual(o);
  });

  it('validates against the Kubernetes API schemas, unknown fields rejected', () => {
    expect(objects.flatMap(schemaProblems)).toEqual([]);
  });

  it.each(Object.keys(CHECKS))('agrees with its config: %s', (name) => {
    expect(CHECKS[name as keyof typeof CHECKS](r)).toEqual([]);
  });

  it('matches the Dockerfile', () => {
    expect(dockerfileProblems(DOCKERFILE, r)).toEqual([]);
  });

  // deploy/vault/README.md documents the example namespace's role; other overlays have their own.
  it.runIf(dir === EXAMPLE)('matches the Vault role and policies', () => {
    expect(vaultProblems(VAULT_README, VAULT_POLICY, VAULT_REVOKE_POLICY, r)).toEqual([]);
  });
});

describe('the build context', () => {
  it('.dockerignore lets in what the Dockerfile copies and nothing else that matters', () => {
    expect(dockerignoreProblems(DOCKERIGNORE, DOCKERFILE)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// Every check can fail: break the example overlay's render one way at a time.

describe('each check catches what it is for', () => {
  const pristine = kustomizeBuild(EXAMPLE);

  type Objs = KObject[];
  const find = (objs: Objs, kind: string, name?: string): Record<string, any> => {
    const o = objs.find((x) => x.kind === kind && (name === undefined || x.metadata.name === name));
    if (!o) throw new Error(`no ${kind} ${name ?? ''}`);
    return o;
  };
  const container = (objs: Objs): Record<string, any> => find(objs, 'Deployment').spec.template.spec.containers[0];
  const podSpec = (objs: Objs): Record<string, any> => find(objs, 'Deployment').spec.template.spec;
  const editConfig = (objs: Objs, from: string | RegExp, to: string): void => {
    const cm = find(objs, 'ConfigMap', CONFIG_MAP);
    const before = cm.data[CONFIG_KEY] as string;
    cm.data[CONFIG_KEY] = before.replace(from, to);
    if (cm.data[CONFIG_KEY] === before) throw new Error(`config edit ${String(from)} changed nothing`);
  };
  const broken = (mutate: (objs: Objs) => void): Rendered => {
    const objs = structuredClone(pristine);
    mutate(objs);
    return analyse(objs);
  };

  const cases: [string, keyof typeof CHECKS, (objs: Objs) => void, RegExp][] = [
    ['an invalid config', 'config', (o) => editConfig(o, 'mode: verify-full', 'mode: verify-everything'), /expected one of/],
    ['a listener missing from the Service', 'listeners', (o) => find(o, 'Service').spec.ports.pop(), /no Service port 5433/],
    ['a listener without a containerPort', 'listeners', (o) => (container(o).ports[0].containerPort = 6543), /no TCP containerPort 5432/],
    ['a Service port routed to the wrong container port', 'listeners', (o) => (find(o, 'Service').spec.ports[0].targetPort = 'admin'), /targets admin/],
    ['a new target not exposed', 'listeners', (o) => editConfig(o, 'listen: 0.0.0.0:5433', 'listen: 0.0.0.0:5434'), /no Service port 5434/],
    ['a stale Service port', 'listeners', (o) => find(o, 'Service').spec.ports.push({ name: 'old', port: 7000, targetPort: 7000 }), /7000 \(old\) is no listener/],
    ['a loopback listener', 'listeners', (o) => editConfig(o, 'listen: 0.0.0.0:5432', 'listen: 127.0.0.1:5432'), /listens on 127.0.0.1 only/],
    ['a Service selecting other pods', 'listeners', (o) => (find(o, 'Service').spec.selector = { app: 'other' }), /selector/],
    ['a probe on the wrong port', 'admin', (o) => (container(o).livenessProbe.httpGet.port = 5432), /livenessProbe: port 5432/],
    ['a readiness probe on the liveness path', 'admin', (o) => (container(o).readinessProbe.httpGet.path = '/healthz'), /readinessProbe: path \/healthz/],
    ['a missing readiness probe', 'admin', (o) => delete container(o).readinessProbe, /readinessProbe: missing/],
    ['the admin server on loopback', 'admin', (o) => editConfig(o, 'listen: 0.0.0.0:9090', 'listen: 127.0.0.1:9090'), /probes cannot reach it/],
    ['the admin port moved in the config only', 'admin', (o) => editConfig(o, 'listen: 0.0.0.0:9090', 'listen: 0.0.0.0:9091'), /port admin is 9090, not the admin port 9091/],
    ['a Prometheus annotation on another port', 'admin', (o) => (find(o, 'Deployment').spec.template.metadata.annotations['prometheus.io/port'] = '8080'), /prometheus.io\/port/],
    ['the config path not under the mount', 'configMount', (o) => (container(o).args[2] = '/etc/keyless.d/keyless.yaml'), /in no volume mount/],
    ['a config file name the volume does not provide', 'configMount', (o) => (container(o).args[2] = '/etc/keyless/config.yaml'), /config.yaml is ConfigMap keyless-ca key config.yaml, not keyless-config\/keyless.yaml/],
    ['a subPath config mount', 'configMount', (o) => (container(o).volumeMounts.find((m: any) => m.name === 'config').subPath = 'keyless.yaml'), /subPath/],
    ['the config mounted from another ConfigMap', 'configMount', (o) => (podSpec(o).volumes.find((v: any) => v.name === 'config').projected.sources[0].configMap.name = 'other'), /ConfigMap other/],
    ['no config argument', 'configMount', (o) => (container(o).args = []), /name no config file/],
    ['a listener port closed by the NetworkPolicy', 'networkPolicy', (o) => find(o, 'NetworkPolicy', 'keyless-listeners').spec.ingress[0].ports.pop(), /listener port 5433.*no NetworkPolicy ingress rule/],
    ['a listener open to other namespaces', 'networkPolicy', (o) => find(o, 'NetworkPolicy', 'keyless-listeners').spec.ingress[0].from.push({ namespaceSelector: {} }), /beyond the namespace/],
    ['a listener open to everyone', 'networkPolicy', (o) => delete find(o, 'NetworkPolicy', 'keyless-listeners').spec.ingress[0].from, /to every source/],
    ['the admin port closed to Prometheus', 'networkPolicy', (o) => (find(o, 'NetworkPolicy', 'keyless-base').spec.ingress[0].from[0].namespaceSelector.matchLabels['kubernetes.io/metadata.name'] = 'default'), /monitoring/],
    ['an upstream port without egress', 'networkPolicy', (o) => editConfig(o, /port: 5432\n(\s+)database: ledger/, 'port: 6432\n$1database: ledger'), /ledger-db's upstream port 6432/],
    ['no DNS egress', 'networkPolicy', (o) => find(o, 'NetworkPolicy', 'keyless-base').spec.egress.shift(), /DNS/],
    ['policies selecting other pods', 'networkPolicy', (o) => o.filter((x) => x.kind === 'NetworkPolicy').forEach((p: any) => (p.spec.podSelector.matchLabels = { app: 'x' })), /no NetworkPolicy restricts ingress/],
    ['a credential not mounted where the store looks', 'files', (o) => (container(o).volumeMounts[0].mountPath = '/var/run/secrets/keyless/orders'), /target orders-db: no volume mounted at \/var\/run\/secrets\/keyless\/orders-db/],
    ['a credential from a ConfigMap', 'files', (o) => (podSpec(o).volumes[0] = { name: 'credential-orders-db', configMap: { name: 'x' } }), /not a Secret volume/],
    ['a CA file in no volume', 'files', (o) => editConfig(o, 'ca: /etc/keyless/db-ca.pem }\n    credential: { store: mounted, path: orders-db }', 'ca: /opt/ca.pem }\n    credential: { store: mounted, path: orders-db }'), /targets.orders-db.upstream.tls.ca: \/opt\/ca.pem is in no volume mount/],
    ['a grace period shorter than the drain', 'shutdown', (o) => (podSpec(o).terminationGracePeriodSeconds = 30), /must exceed/],
    ['a drain longer than the grace period', 'shutdown', (o) => editConfig(o, 'drainTimeout: 30s', 'drainTimeout: 2m'), /must exceed/],
    ['a writable root filesystem', 'pod', (o) => (container(o).securityContext.readOnlyRootFilesystem = false), /readOnlyRootFilesystem/],
    ['privilege escalation', 'pod', (o) => delete container(o).securityContext.allowPrivilegeEscalation, /allowPrivilegeEscalation/],
    ['capabilities kept', 'pod', (o) => (container(o).securityContext.capabilities.drop = ['NET_RAW']), /drop ALL/],
    ['no seccomp profile', 'pod', (o) => { delete container(o).securityContext.seccompProfile; delete podSpec(o).securityContext.seccompProfile; }, /seccompProfile/],
    ['root', 'pod', (o) => { podSpec(o).securityContext.runAsUser = 0; podSpec(o).securityContext.runAsNonRoot = false; delete container(o).securityContext.runAsNonRoot; }, /runAsNonRoot/],
    ['one replica', 'pod', (o) => (find(o, 'Deployment').spec.replicas = 1), /replicas is 1/],
    ['no spread over nodes', 'pod', (o) => delete podSpec(o).topologySpreadConstraints, /spread over nodes/],
    ['a PodDisruptionBudget selecting nothing', 'pod', (o) => (find(o, 'PodDisruptionBudget').spec.selector.matchLabels = { app: 'x' }), /does not select/],
    ['no resources', 'pod', (o) => delete container(o).resources, /resources/],
    ['the Vault token for another audience', 'pod', (o) => (podSpec(o).volumes.find((v: any) => v.name === 'vault-token').projected.sources[0].serviceAccountToken.audience = 'api'), /audience is api/],
    ['a long-lived Vault token', 'pod', (o) => (podSpec(o).volumes.find((v: any) => v.name === 'vault-token').projected.sources[0].serviceAccountToken.expirationSeconds = 86400), /lives 86400 s/],
    ['the Vault token elsewhere', 'pod', (o) => (container(o).volumeMounts.find((m: any) => m.name === 'vault-token').mountPath = '/var/run/secrets/tokens'), /no projected ServiceAccount token at/],
    ['the API token mounted', 'pod', (o) => delete podSpec(o).automountServiceAccountToken, /automountServiceAccountToken/],
    ['a Secret with values', 'secretValues', (o) => o.push({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'keyless-orders-db' }, stringData: { password: 'x' } }), /must not carry secret values/],
    ['a password in the environment', 'secretValues', (o) => (container(o).env = [{ name: 'DB_PASSWORD', value: 'x' }]), /DB_PASSWORD/],
  ];

  it.each(cases)('%s', (_what, check, mutate, expected) => {
    expect(CHECKS[check](analyse(structuredClone(pristine)))).toEqual([]);
    const problems = CHECKS[check](broken(mutate));
    expect(problems.join('\n')).toMatch(expected);
  });

  it.each<[string, Record<string, unknown>, 'stores' | 'targets', keyof typeof CHECKS, RegExp]>([
    ['a Vault store with the default token file', { vault: { kind: 'vault', address: 'https://vault.vault.svc:8200', auth: { method: 'kubernetes', role: 'payments-keyless', tokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token' } } }, 'stores', 'files', /stores.vault.auth.tokenFile is \/var\/run\/secrets\/kubernetes.io/],
    ['a Vault store on a port without egress', { vault: { kind: 'vault', address: 'https://vault.example.com:8443', auth: { method: 'kubernetes', role: 'r', tokenFile: VAULT_TOKEN_FILE } } }, 'stores', 'networkPolicy', /store vault's port 8443/],
    ['an http upstream without egress', { api: { protocol: 'http', listen: { host: '0.0.0.0', port: 5432 }, upstream: { url: 'https://api.example.com:8443' }, credential: { store: 'mounted', path: 'orders-db' } } }, 'targets', 'networkPolicy', /target api's upstream port 8443/],
  ])('catches %s (config given as parsed)', (_what, add, where, check, expected) => {
    const r = analyse(structuredClone(pristine));
    const config = r.config!;
    const broken = { ...r, config: { ...config, [where]: { ...config[where], ...add } } as Config };
    expect(CHECKS[check](r)).toEqual([]);
    expect(CHECKS[check](broken).join('\n')).toMatch(expected);
  });

  it.each<[string, (objs: Objs) => void, RegExp]>([
    ['a misspelt field', (o) => (container(o).securityContext.readOnlyRootFileSystem = true), /unknown field "readOnlyRootFileSystem"/],
    ['a field at the wrong level', (o) => (podSpec(o).image = 'x'), /unknown field "image"/],
    ['a misspelt metadata field', (o) => (find(o, 'Service').metadata.lables = { a: 'b' }), /Service\/keyless\/metadata\/lables: unknown field/],
    ['a misspelt NetworkPolicy rule', (o) => (find(o, 'NetworkPolicy', 'keyless-listeners').spec.ingress[0].form = []), /ingress\/0\/form: unknown field/],
    ['a wrong type', (o) => (find(o, 'Deployment').spec.replicas = '2'), /\/spec\/replicas: type/],
    ['a missing required field', (o) => delete container(o).name, /required .*"name"/],
    ['a bad enum value', (o) => (find(o, 'Service').spec.ports[0].protocol = 'QUIC'), /enum/],
    ['a port out of int32', (o) => (container(o).ports[0].containerPort = 2 ** 40), /format/],
  ])('the schema check rejects %s', (_what, mutate, expected) => {
    const objs = structuredClone(pristine);
    mutate(objs);
    expect(objs.flatMap(schemaProblems).join('\n')).toMatch(expected);
  });

  it('the schema check rejects a kind it has no schema for', () => {
    expect(schemaProblems({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'x' } }).join()).toMatch(/no schema/);
  });

  it.each<[string, (text: string) => string, RegExp]>([
    ['a single stage', (t) => t.replace(/FROM \$\{NODE_IMAGE\} AS runtime[\s\S]*?WORKDIR \/app\n/, ''), /multi-stage/],
    ['an old Node', (t) => t.replace('ARG NODE_IMAGE=node:24-bookworm-slim', 'ARG NODE_IMAGE=node:20-bookworm-slim'), /node:20-bookworm-slim/],
    ['dev dependencies in the image', (t) => t.replace('npm ci --omit=dev', 'npm ci'), /production dependencies only/],
    ['no build', (t) => t.replace('RUN npm run build', 'RUN true'), /npm run build/],
    ['a named user', (t) => t.replace('USER 10001:10001', 'USER node'), /numeric UID/],
    ['a user other than the Deployment\'s', (t) => t.replace('USER 10001:10001', 'USER 1000:1000'), /differs from the Deployment's runAsUser/],
    ['root', (t) => t.replace('USER 10001:10001', 'USER 0'), /USER is root/],
    ['no NODE_ENV', (t) => t.replace('ENV NODE_ENV=production', ''), /NODE_ENV/],
    ['another entry point', (t) => t.replace('ENTRYPOINT ["node", "dist/main.js"]', 'ENTRYPOINT ["node", "bin/keyless.js"]'), /ENTRYPOINT/],
    ['another config path', (t) => t.replace('"/etc/keyless/keyless.yaml"]', '"/config/keyless.yaml"]'), /CMD/],
    ['the admin port not exposed', (t) => t.replace('EXPOSE 9090', 'EXPOSE 8080'), /EXPOSE lacks the admin port 9090/],
    ['a malformed instruction', (t) => t.replace('COPY --from=build /app/dist ./dist', 'COPY --from=build /app/dist'), /line \d+: COPY requires at least two arguments/],
    ['an unknown instruction', (t) => t.replace('WORKDIR /app', 'WORKDIRR /app'), /line \d+: Unknown instruction: WORKDIRR/],
  ])('the Dockerfile check catches %s', (_what, edit, expected) => {
    const r = analyse(structuredClone(pristine));
    const text = edit(DOCKERFILE);
    expect(text).not.toBe(DOCKERFILE);
    expect(dockerfileProblems(text, r).join('\n')).toMatch(expected);
  });

  it.each<[string, (text: string) => string, RegExp]>([
    ['a source the Dockerfile needs excluded', (t) => t.replace('!src\n', ''), /excludes src/],
    ['everything let in', (t) => t.replace(/^\*$/m, ''), /lets node_modules/],
    ['secrets let back in', (t) => `${t}!config\n`, /config\/secrets/],
  ])('the .dockerignore check catches %s', (_what, edit, expected) => {
    const text = edit(DOCKERIGNORE);
    expect(text).not.toBe(DOCKERIGNORE);
    expect(dockerignoreProblems(text, DOCKERFILE).join('\n')).toMatch(expected);
  });

  it.each<[string, (t: { readme: string; policy: string; revoke: string }) => void, RegExp]>([
    ['a role for another namespace', (t) => (t.readme = t.readme.replace('bound_service_account_namespaces=payments', 'bound_service_account_namespaces=billing')), /binds namespace billing/],
    ['a role for another ServiceAccount', (t) => (t.readme = t.readme.replace('bound_service_account_names=keyless', 'bound_service_account_names=default')), /binds ServiceAccount default/],
    ['a role for another audience', (t) => (t.readme = t.readme.replace('audience=vault', 'audience=https://kubernetes.default.svc')), /audience/],
    ['a role without the policy', (t) => (t.readme = t.readme.replace('token_policies=payments-keyless \\', 'token_policies=default \\')), /token_policies default/],
    ['a policy without lease renewal', (t) => (t.policy = t.policy.replace('path "sys/leases/renew"', 'path "sys/leases/renewal"')), /update on sys\/leases\/renew/],
    ['a policy without dynamic credentials', (t) => (t.policy = t.policy.replace('"database/creds/payments-*"', '"database/creds/payments-orders-ro"')), /read on database\/creds\/payments-orders-rw/],
    ['a policy reaching other namespaces', (t) => (t.policy = t.policy.replace('"secret/data/payments/*"', '"secret/data/*"')), /beyond the namespace/],
    ['revocation in the base policy', (t) => (t.policy += '\npath "sys/leases/revoke" {\n  capabilities = ["update"]\n}\n'), /sys\/leases\/revoke, beyond/],
    ['a revoke policy that cannot revoke', (t) => (t.revoke = t.revoke.replace(/path "sys\/leases\/revoke" \{[^}]*\}/, '')), /keyless-revoke-policy.hcl does not grant/],
  ])('the Vault check catches %s', (_what, edit, expected) => {
    const r = analyse(structuredClone(pristine));
    const t = { readme: VAULT_README, policy: VAULT_POLICY, revoke: VAULT_REVOKE_POLICY };
    edit(t);
    expect([t.readme, t.policy, t.revoke]).not.toEqual([VAULT_README, VAULT_POLICY, VAULT_REVOKE_POLICY]);
    expect(vaultProblems(t.readme, t.policy, t.revoke, r).join('\n')).toMatch(expected);
  });
});

describe('test/support/kustomize.ts', () => {
  it.each([
    ['a kustomization field it does not implement', 'namePrefix: x-\n', /"namePrefix" is not supported/],
    ['a hashed ConfigMap name', 'configMapGenerator:\n  - name: c\n    files: [a.yaml]\n', /disableNameSuffixHash/],
  ])('refuses %s rather than render differently', (_what, extra, expected) => {
    const dir = mkdtempSync(join(tmpdir(), 'keyless-kustomize-'));
    try {
      mkdirSync(join(dir, 'k'));
      writeFileSync(join(dir, 'k', 'a.yaml'), 'x: 1\n');
      writeFileSync(join(dir, 'k', 'kustomization.yaml'), `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n${extra}`);
      expect(() => kustomizeBuild(join(dir, 'k'))).toThrow(expected);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a list merge it does not know the key of', () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyless-kustomize-'));
    try {
      writeFileSync(join(dir, 'np.yaml'), 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: n }\nspec: { ingress: [ { ports: [ { port: 1 } ] } ] }\n');
      writeFileSync(join(dir, 'patch.yaml'), 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: n }\nspec: { ingress: [ { ports: [ { port: 2 } ] } ] }\n');
      writeFileSync(join(dir, 'kustomization.yaml'), 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [np.yaml]\npatches: [ { path: patch.yaml } ]\n');
      expect(() => kustomizeBuild(dir)).toThrow(/merging the list at spec.ingress is not supported/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('finds kubectl here, or says why the cross-check is skipped', () => {
    if (!HAVE_KUBECTL) console.warn('kubectl is not installed: the render was not compared with kubectl kustomize');
    expect(existsSync(join(EXAMPLE, 'kustomization.yaml'))).toBe(true);
  });
});
