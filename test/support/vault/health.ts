// sys/health and sys/seal-status (http/sys_health.go, sys_seal.go): status by state in Vault's
// order, the code-override query parameters, and the bodies for each state.

/** Health states beyond sealed. */
export type VaultMode = 'active' | 'standby' | 'performance-standby' | 'dr-secondary' | 'uninitialized' | 'ha-unhealthy' | 'removed';

export interface HealthState {
  mode: VaultMode;
  sealed: boolean;
  now: number;
  version: string;
  enterprise: boolean;
  clusterName: string;
  clusterId: string;
}

/** Go's strconv.ParseBool. */
export function goBool(v: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  return undefined;
}

export function healthBody(s: HealthState): Record<string, unknown> {
  const now = Math.floor(s.now / 1000);
  const initialized = s.mode !== 'uninitialized';
  if (!initialized || s.sealed) {
    return { initialized, sealed: true, standby: true, performance_standby: false, replication_performance_mode: 'unknown', replication_dr_mode: 'unknown', server_time_utc: now, version: s.version };
  }
  const body: Record<string, unknown> = {
    initialized: true,
    sealed: false,
    standby: s.mode !== 'active',
    performance_standby: s.mode === 'performance-standby',
    replication_performance_mode: 'disabled',
    replication_dr_mode: s.mode === 'dr-secondary' ? 'secondary' : 'disabled',
    server_time_utc: now,
    version: s.version,
    enterprise: s.enterprise,
    cluster_name: s.clusterName,
    cluster_id: s.clusterId,
    echo_duration_ms: 0,
    clock_skew_ms: 0,
  };
  if (s.mode === 'removed') body.removed_from_cluster = true;
  if (s.mode === 'ha-unhealthy') body.ha_connection_healthy = false;
  return body;
}

const DEFAULT_CODES = { activecode: 200, standbycode: 429, drsecondarycode: 472, performancestandbycode: 473, sealedcode: 503, uninitcode: 501, haunhealthycode: 474, removedcode: 530 };

/** Status and body for `GET|HEAD /v1/sys/health?…`; a bad parameter is `400 {"errors":[]}`. */
export function health(s: HealthState, q: URLSearchParams, head: boolean): { status: number; body: string | undefined } {
  const bad = { status: 400, body: '{"errors":[]}\n' };
  const bools = { standbyok: false, perfstandbyok: false };
  for (const k of Object.keys(bools) as Array<keyof typeof bools>) {
    const v = q.get(k);
    if (v === null) continue;
    const b = goBool(v);
    if (b === undefined) return bad;
    bools[k] = b;
  }
  const codes = { ...DEFAULT_CODES };
  for (const k of Object.keys(codes) as Array<keyof typeof codes>) {
    const v = q.get(k);
    if (v === null) continue;
    if (!/^[+-]?\d+$/.test(v)) return bad;
    codes[k] = Number(v);
  }
  let status: number;
  if (s.mode === 'uninitialized') status = codes.uninitcode;
  else if (s.sealed) status = codes.sealedcode;
  else if (s.mode === 'removed') status = codes.removedcode;
  else if (s.mode === 'dr-secondary') status = codes.drsecondarycode;
  else if (s.mode === 'performance-standby') status = bools.perfstandbyok ? codes.activecode : codes.performancestandbycode;
  else if (s.mode === 'ha-unhealthy') status = codes.haunhealthycode;
  else if (s.mode === 'standby') status = bools.standbyok ? codes.activecode : codes.standbycode;
  else status = codes.activecode;
  return { status, body: head ? undefined : `${JSON.stringify(healthBody(s))}\n` };
}

export function sealStatus(s: HealthState): Record<string, unknown> {
  const sealed = s.sealed || s.mode === 'uninitialized';
  const body: Record<string, unknown> = {
    type: 'shamir',
    initialized: s.mode !== 'uninitialized',
    sealed,
    t: 1,
    n: 1,
    progress: 0,
    nonce: '',
    version: s.version,
    build_date: '2024-09-24T19:48:40Z',
    migration: false,
    recovery_seal: false,
    storage_type: 'inmem',
  };
  if (!sealed) {
    body.cluster_name = s.clusterName;
    body.cluster_id = s.clusterId;
  }
  return body;
}
