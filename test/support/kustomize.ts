// A small kustomize for the subset deploy/kustomize uses, so the manifest test runs where no
// kustomize binary can be had (none is packaged for Debian or npm; `kubectl kustomize` exists only
// where a kubectl was installed by other means). Where kubectl is present the test renders with it
// too and requires the two renders to be equal, which keeps this one honest.
//
// Supported, with kustomize's semantics: `resources` (files, multi-document files, directories with
// a kustomization), `namespace`, `images`, `configMapGenerator` (from files, with
// `options.disableNameSuffixHash: true` and `options.labels`), and `patches` that are strategic-merge
// patch files naming their target by apiVersion, kind and name. Anything else in a kustomization, or
// a patch this renderer cannot apply exactly as kustomize would, throws: a silent difference from
// kustomize would make the test check something other than what a cluster receives.
import { readFileSync, statSync } from 'node:fs';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { parseAllDocuments, parse as parseYaml } from 'yaml';

export type KObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; [k: string]: unknown }; [k: string]: unknown };

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

const SUPPORTED_FIELDS = new Set(['apiVersion', 'kind', 'resources', 'namespace', 'images', 'configMapGenerator', 'patches']);

/** Kinds the namespace transformer may set metadata.namespace on without rewriting references. */
const NAMESPACED = new Set(['ServiceAccount', 'ConfigMap', 'Secret', 'Service', 'Deployment', 'StatefulSet', 'DaemonSet', 'PodDisruptionBudget', 'NetworkPolicy', 'Pod']);

/**
 * Lists that strategic merge patches merge element by element, by their patchMergeKey in the
 * Kubernetes API (path from the object root, `[]` for "each element"). A list not named here is
 * replaced by the patch's list only when the resource has none; otherwise the renderer refuses.
 */
const MERGE_KEYS: Record<string, string> = {
  'spec.template.spec.containers': 'name',
  'spec.template.spec.initContainers': 'name',
  'spec.template.spec.volumes': 'name',
  'spec.template.spec.containers[].ports': 'containerPort',
  'spec.template.spec.containers[].volumeMounts': 'mountPath',
  'spec.template.spec.containers[].env': 'name',
  'Service:spec.ports': 'port',
};

export function kustomizeBuild(dir: string): KObject[] {
  const kfile = join(dir, 'kustomization.yaml');
  const k = parseYaml(readFileSync(kfile, 'utf8')) as JsonObject;
  for (const field of Object.keys(k)) {
    if (!SUPPORTED_FIELDS.has(field)) throw new Error(`${kfile}: "${field}" is not supported by test/support/kustomize.ts`);
  }
  if (k.kind !== 'Kustomization') throw new Error(`${kfile}: kind must be Kustomization`);

  let objects: KObject[] = [];
  for (const entry of asArray<string>(k.resources)) {
    if (isAbsolute(entry) || /^[a-z]+:\/\//i.test(entry)) throw new Error(`${kfile}: resource ${entry}: kustomize takes relative paths only (remote ones are not supported here)`);
    const path = resolve(dir, entry);
    if (statSync(path).isDirectory()) objects.push(...kustomizeBuild(path));
    else objects.push(...readObjects(path));
  }
  for (const gen of asArray<JsonObject>(k.configMapGenerator)) objects.push(configMapFrom(dir, gen));

  // kustomize's order: patches, then the namespace, then images.
  for (const p of asArray<JsonObject>(k.patches)) objects = applyPatch(dir, p, objects);
  if (typeof k.namespace === 'string') {
    for (const o of objects) {
      if (!NAMESPACED.has(o.kind)) throw new Error(`namespace: kind ${o.kind} is not supported`);
      o.metadata.namespace = k.namespace;
    }
  }
  for (const img of asArray<JsonObject>(k.images)) setImage(objects, img);
  return objects;
}

function readObjects(file: string): KObject[] {
  return parseAllDocuments(readFileSync(file, 'utf8'))
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`${file}: ${d.errors[0]!.message}`);
      return d.toJS() as KObject | null;
    })
    .filter((o): o is KObject => o !== null);
}

function configMapFrom(dir: string, gen: JsonObject): KObject {
  const allowed = new Set(['name', 'files', 'options']);
  for (const f of Object.keys(gen)) if (!allowed.has(f)) throw new Error(`configMapGenerator: "${f}" is not supported`);
  const options = (gen.options ?? {}) as JsonObject;
  for (const f of Object.keys(options)) if (f !== 'disableNameSuffixHash' && f !== 'labels') throw new Error(`configMapGenerator options: "${f}" is not supported`);
  // kustomize appends a content hash to the name and rewrites every reference to it; not done here.
  if (options.disableNameSuffixHash !== true) throw new Error('configMapGenerator: only disableNameSuffixHash: true is supported');
  const data: Record<string, string> = {};
  for (const f of asArray<string>(gen.files)) {
    if (f.includes('=')) throw new Error('configMapGenerator: key=file is not supported');
    data[basename(f)] = readFileSync(resolve(dir, f), 'utf8');
  }
  const metadata: KObject['metadata'] = { name: String(gen.name) };
  if (options.labels) metadata.labels = structuredClone(options.labels);
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata, data };
}

function applyPatch(dir: string, p: JsonObject, objects: KObject[]): KObject[] {
  for (const f of Object.keys(p)) if (f !== 'path') throw new Error(`patches: "${f}" is not supported (only path: to a strategic merge patch)`);
  const file = resolve(dir, String(p.path));
  const docs = readObjects(file);
  if (docs.length !== 1) throw new Error(`${file}: a patch file must hold exactly one document`);
  const patch = docs[0]!;
  if (patch.metadata?.namespace !== undefined) throw new Error(`${file}: a patch naming a namespace is not supported`);
  const matches = objects.filter((o) => o.apiVersion === patch.apiVersion && o.kind === patch.kind && o.metadata.name === patch.metadata.name);
  if (matches.length !== 1) throw new Error(`${file}: matches ${matches.length} resources, expected 1`);
  const target = matches[0]!;
  const merged = mergeValue(target as unknown as Json, patch as unknown as Json, '', target.kind, file) as unknown as KObject;
  return objects.map((o) => (o === target ? merged : o));
}

function mergeValue(orig: Json | undefined, patch: Json, path: string, kind: string, file: string): Json {
  if (isObject(patch)) {
    if (!isObject(orig)) return stripNulls(patch, path, file);
    const out: JsonObject = { ...orig };
    for (const [key, value] of Object.entries(patch)) {
      if (key.startsWith('$')) throw new Error(`${file}: directive ${key} at ${path} is not supported`);
      const sub = path === '' ? key : `${path}.${key}`;
      if (value === null) delete out[key];
      else out[key] = mergeValue(orig[key], value, sub, kind, file);
    }
    return out;
  }
  if (Array.isArray(patch)) {
    if (orig === undefined || orig === null) return stripNulls(patch, path, file);
    if (!Array.isArray(orig)) throw new Error(`${file}: ${path} is a list in the patch but not in the resource`);
    const key = MERGE_KEYS[path] ?? MERGE_KEYS[`${kind}:${path}`];
    if (key === undefined) throw new Error(`${file}: merging the list at ${path} is not supported`);
    // kustomize (kyaml merge2, ListIncreaseDirection prepend): the patch's elements first, each
    // merged into the resource's element with the same key, then the resource's other elements.
    const keyOf = (e: Json): Json | undefined => (isObject(e) ? e[key] : undefined);
    const out: Json[] = [];
    for (const pe of patch) {
      const k = keyOf(pe);
      if (k === undefined) throw new Error(`${file}: an element of ${path} has no ${key}`);
      const oe = orig.find((e) => keyOf(e) === k);
      out.push(mergeValue(oe, pe, `${path}[]`, kind, file));
    }
    for (const oe of orig) {
      const k = keyOf(oe);
      if (!patch.some((pe) => keyOf(pe) === k)) out.push(oe);
    }
    return out;
  }
  return patch;
}

function stripNulls(v: Json, path: string, file: string): Json {
  if (Array.isArray(v)) return v.map((e) => stripNulls(e, path, file));
  if (isObject(v)) {
    const out: JsonObject = {};
    for (const [k, e] of Object.entries(v)) {
      if (k.startsWith('$')) throw new Error(`${file}: directive ${k} at ${path} is not supported`);
      if (e !== null) out[k] = stripNulls(e, path, file);
    }
    return out;
  }
  return v;
}

function setImage(objects: KObject[], img: JsonObject): void {
  for (const f of Object.keys(img)) if (!['name', 'newName', 'newTag'].includes(f)) throw new Error(`images: "${f}" is not supported`);
  for (const o of objects) {
    const spec = (o as { spec?: { template?: { spec?: JsonObject } } }).spec?.template?.spec;
    if (!spec) continue;
    for (const list of ['initContainers', 'containers']) {
      for (const c of asArray<JsonObject>(spec[list])) {
        const image = String(c.image);
        const m = /^(.*?)(?::([^:/@]+))?(@.+)?$/.exec(image)!;
        if (m[1] !== img.name) continue;
        if (m[3]) throw new Error(`images: ${image} has a digest; not supported`);
        const name = img.newName === undefined ? m[1]! : String(img.newName);
        const tag = img.newTag === undefined ? m[2] : String(img.newTag);
        c.image = tag === undefined ? name : `${name}:${tag}`;
      }
    }
  }
}

function asArray<T>(v: unknown): T[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new Error('expected a list');
  return v as T[];
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
