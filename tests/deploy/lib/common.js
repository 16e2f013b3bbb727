// Shared helpers of the deployment checks: where things are, rendering the
// kustomizations, reading the workers' --help, the contract's names.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, "../../..");
// Overridable so a check can be proven to fail on a broken copy.
export const K8S_DIR = path.resolve(process.env.DEPLOY_K8S_DIR ?? path.join(REPO_ROOT, "k8s"));
export const DOCKER_DIR = path.resolve(process.env.DEPLOY_DOCKER_DIR ?? path.join(REPO_ROOT, "docker"));
export const CARGO_TARGET_DIR =
  process.env.CARGO_TARGET_DIR ?? path.join(homedir(), ".cache/ml-workers/target");

// Every kustomization of the workers that must render: the base and each
// overlay, the regions included.
export const KUSTOMIZATIONS = [
  "base", "overlays/dev", "overlays/staging", "overlays/prod", "overlays/prod-gpu",
  "overlays/regions/us-east-1", "overlays/regions/eu-west-1",
];

// The region of each regional overlay (its region.yaml; k8s/README.md
// "Multi-region").
export const REGIONS = { "overlays/regions/us-east-1": "us-east-1", "overlays/regions/eu-west-1": "eu-west-1" };

// Kustomizations without workers, rendered and validated too: the global
// receiver of the regions' metrics.
export const OTHER_KUSTOMIZATIONS = ["global-metrics"];

// The namespace of the workers, as k8s/README.md's commands name it.
export const NAMESPACE = "bookmarkai-ml";

// The only kustomizations that may render Secrets (throwaway values for a dev
// cluster): anywhere else `kubectl apply -k` would overwrite the real Secrets
// that operators create first.
export const DEV_ONLY = new Set(["overlays/dev"]);

// The contract's workers (CONTRACT.md section 1). `candle`: the model runs on
// candle, which sizes its thread pools from CANDLE_NUM_THREADS_ENV itself.
// `downloads`: streams media downloads (up to MEDIA_MAX_BYTES each) into its
// temp dir (MEDIA_TEMP_DIR, else the system's).
export const WORKERS = {
  "vector-worker": { port: 9093, queues: ["ml.embed"], candle: true },
  "llm-worker": { port: 9091, queues: ["ml.summarize", "ml.summarize_local", "ml.summarize_video_combined"], candle: true },
  "whisper-worker": { port: 9092, queues: ["ml.transcribe", "ml.transcribe_local"], candle: false, downloads: true },
};

// Read by candle itself, not by the workers' flags (candle-core 0.11
// src/utils.rs: CANDLE_NUM_THREADS for its compute pool, else
// RAYON_NUM_THREADS, else the node's physical cores). The candle workers log
// the count they get at start-up (ml_runtime::cpu).
export const CANDLE_THREAD_ENV = ["CANDLE_NUM_THREADS", "RAYON_NUM_THREADS"];

export function binaryPath(worker) {
  return path.join(CARGO_TARGET_DIR, "debug", worker);
}

/** Env names listed by `<binary> --help` (`[env: NAME=` or `[env: NAME]`). */
export function helpEnvNames(bin) {
  const help = execFileSync(bin, ["--help"], { encoding: "utf8", timeout: 30_000 });
  const names = new Set([...help.matchAll(/\[env: ([A-Z0-9_]+)[=\]]/g)].map((m) => m[1]));
  if (names.size === 0) throw new Error(`${bin} --help lists no [env: NAME] entries`);
  return names;
}

const envNamesCache = new Map();
/**
 * The env names `worker` reads: those its binary's --help lists, plus
 * candle's thread variables for the candle workers.
 */
export function workerEnvNames(worker) {
  if (!envNamesCache.has(worker)) {
    const bin = binaryPath(worker);
    if (!existsSync(bin)) throw new Error(`${bin} is missing: build it first (cargo build --bins, or run scripts/test)`);
    const names = helpEnvNames(bin);
    if (WORKERS[worker].candle) CANDLE_THREAD_ENV.forEach((n) => names.add(n));
    envNamesCache.set(worker, { names, source: `${bin} --help (+ candle's ${CANDLE_THREAD_ENV.join(", ")})` });
  }
  return envNamesCache.get(worker);
}

/** Every env name some worker reads. */
export function allWorkerEnvNames() {
  return new Set(Object.keys(WORKERS).flatMap((w) => [...workerEnvNames(w).names]));
}

const renderCache = new Map();
/** Renders a kustomization (relative to K8S_DIR) into a list of objects. */
export function render(rel) {
  if (!renderCache.has(rel)) {
    const dir = path.join(K8S_DIR, rel);
    let out;
    try {
      out = execFileSync("kubectl", ["kustomize", dir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    } catch (e) {
      throw new Error(`kubectl kustomize ${dir} failed:\n${e.stderr || e.message}`);
    }
    const docs = YAML.parseAllDocuments(out).map((d) => {
      if (d.errors.length) throw new Error(`${rel}: rendered YAML does not parse: ${d.errors[0].message}`);
      return d.toJS();
    });
    renderCache.set(rel, docs.filter((d) => d));
  }
  return renderCache.get(rel);
}

export function renderAll() {
  return KUSTOMIZATIONS.map((rel) => ({ rel, objects: render(rel) }));
}

export function id(o) {
  return `${o.kind}/${o.metadata?.name}`;
}

/** Whether a label selector ({matchLabels, matchExpressions}) selects `labels`. */
export function selects(selector, labels = {}) {
  if (!selector) return false;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, key);
    if (operator === "In" && !(has && values.includes(labels[key]))) return false;
    if (operator === "NotIn" && has && values.includes(labels[key])) return false;
    if (operator === "Exists" && !has) return false;
    if (operator === "DoesNotExist" && has) return false;
  }
  return true;
}

/** Containers and initContainers of a workload, with their field path. */
export function containersOf(o) {
  const spec = o.spec?.template?.spec;
  if (!spec) return [];
  return [
    ...(spec.initContainers ?? []).map((c, i) => ({ c, field: `spec.template.spec.initContainers[${i}] (${c.name})`, init: true })),
    ...(spec.containers ?? []).map((c, i) => ({ c, field: `spec.template.spec.containers[${i}] (${c.name})`, init: false })),
  ];
}

export function readYamlFile(file) {
  // merge: compose files use YAML merge keys (<<: *anchor).
  const doc = YAML.parseDocument(readFileSync(file, "utf8"), { merge: true });
  if (doc.errors.length) throw new Error(`${file}: does not parse: ${doc.errors[0].message}`);
  return doc.toJS();
}

/**
 * The Secrets operators create before applying (k8s/README.md "Apply"):
 * name -> Secret object. Their names and keys are those the dev overlay
 * generates with throwaway values (the other kustomizations render none).
 */
export function operatorSecrets() {
  return new Map(render("overlays/dev").filter((o) => o.kind === "Secret").map((o) => [o.metadata.name, o]));
}

/**
 * A rendered Secret named `name`, else the operator-created one, else
 * undefined. A regional overlay's Secrets are the operator-created ones with
 * the region as suffix (`ml-workers-credentials-eu-west-1`, same keys).
 */
export function findSecret(objects, name) {
  const rendered = objects.find((o) => o.kind === "Secret" && o.metadata.name === name);
  if (rendered) return rendered;
  const catalog = operatorSecrets();
  if (catalog.has(name)) return catalog.get(name);
  for (const region of Object.values(REGIONS))
    if (name?.endsWith(`-${region}`) && catalog.has(name.slice(0, -region.length - 1))) return catalog.get(name.slice(0, -region.length - 1));
  return undefined;
}

/** The keys of a ConfigMap or Secret object. */
export function keysOf(obj) {
  return Object.keys({ ...(obj.data ?? {}), ...(obj.stringData ?? {}) });
}

/**
 * [{name, from}] for a container: envFrom sources resolved, plus env. A
 * Secret that is not rendered resolves to the one operators create
 * (operatorSecrets).
 */
export function containerEnv(objects, c) {
  const out = [];
  for (const src of c.envFrom ?? []) {
    const ref = src.configMapRef ?? src.secretRef;
    const kind = src.configMapRef ? "ConfigMap" : "Secret";
    const obj = kind === "Secret"
      ? findSecret(objects, ref?.name)
      : objects.find((o) => o.kind === kind && o.metadata.name === ref?.name);
    if (!obj) {
      if (!ref?.optional) out.push({ name: null, from: `${kind}/${ref?.name} (referenced by envFrom, neither rendered nor created by operators)` });
      continue;
    }
    const created = objects.includes(obj) ? "" : " (created by operators)";
    for (const k of keysOf(obj))
      out.push({ name: (src.prefix ?? "") + k, from: `${kind}/${obj.metadata.name}${created} key ${k}` });
  }
  for (const e of c.env ?? []) out.push({ name: e.name, from: `env ${e.name}` });
  return out;
}

const QUANTITY_SUFFIX = {
  n: 1e-9, u: 1e-6, m: 1e-3, "": 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};
/** A Kubernetes quantity ("500m", "2", "1Gi", 4) as a number (cores, bytes). */
export function quantity(q) {
  if (typeof q === "number") return q;
  const m = String(q ?? "").match(/^([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$/);
  if (!m) throw new Error(`${q} is not a Kubernetes quantity`);
  return Number(m[1]) * QUANTITY_SUFFIX[m[2] ?? ""];
}

/**
 * The value of env `name` in a Deployment's first container as the pod gets
 * it: env wins over envFrom, later envFrom sources over earlier ones.
 * Undefined when unset; valueFrom entries give undefined too.
 */
export function envValue(objects, deploy, name) {
  const c = deploy.spec.template.spec.containers[0];
  const direct = (c.env ?? []).find((e) => e.name === name);
  if (direct) return direct.value;
  let value;
  for (const src of c.envFrom ?? []) {
    if (!src.configMapRef) continue; // Secrets hold credentials only
    const obj = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === src.configMapRef.name);
    const v = obj?.data?.[name];
    if (v !== undefined) value = v;
  }
  return value;
}

/** The `[default: X]` of env `name` in a worker's --help, or undefined. */
export function helpDefault(worker, name) {
  const help = execFileSync(binaryPath(worker), ["--help"], { encoding: "utf8", timeout: 30_000 });
  // One block per option: from a line starting with `-x, --flag` or
  // `--flag` to the next; clap puts [env: ...] and [default: ...] in it.
  const blocks = help.split(/\n(?=\s*(?:-\w, )?--[a-z])/);
  const block = blocks.find((b) => new RegExp(`\\[env: ${name}[=\\]]`).test(b));
  return block?.match(/\[default: ([^\]]+)\]/)?.[1];
}
