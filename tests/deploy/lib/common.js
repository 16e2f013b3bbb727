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

// Every kustomization that must render: the base and each overlay.
export const KUSTOMIZATIONS = ["base", "overlays/dev", "overlays/staging", "overlays/prod", "overlays/prod-gpu"];

// The contract's workers (CONTRACT.md section 1).
export const WORKERS = {
  "vector-worker": { port: 9093, queues: ["ml.embed"] },
  "llm-worker": { port: 9091, queues: ["ml.summarize", "ml.summarize_local", "ml.summarize_video_combined"] },
  "whisper-worker": { port: 9092, queues: ["ml.transcribe", "ml.transcribe_local"] },
};

// Every env name a worker may be given (CONTRACT.md section 6 and the
// runtime's flags). Per worker, tests narrow this further with the binary.
export const ALLOWED_ENV = new Set([
  "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "REDIS_URL", "CELERY_RESULT_EXPIRES",
  "CELERY_TASK_TRACK_STARTED", "WORKER_CONCURRENCY", "WORKER_PREFETCH_MULTIPLIER",
  "TASK_MAX_RETRIES", "TASK_RETRY_BACKOFF_SECS", "TASK_RETRY_BACKOFF_MAX_SECS",
  "WORKER_SHUTDOWN_TIMEOUT", "METRICS_HOST", "LOG_LEVEL", "LOG_FORMAT",
  "OTEL_EXPORTER_OTLP_ENDPOINT", "DATABASE_URL", "POSTGRES_HOST", "POSTGRES_PORT",
  "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD", "DATABASE_MAX_CONNECTIONS",
  "DATABASE_LOCK_TIMEOUT_MS", "DATABASE_STATEMENT_TIMEOUT_MS", "PROMETHEUS_METRICS_PORT",
  "MODELS_DIR", "EMBEDDING_MODEL", "EMBEDDING_MODEL_PATH", "EMBED_QUEUE",
  "MEDIA_ROOTS", "S3_ENDPOINT", "S3_FORCE_PATH_STYLE", "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY", "AWS_REGION",
]);
// Names of the contract that only the not-yet-built workers will read.
export const CONTRACT_ONLY_ENV = ["MEDIA_ROOTS", "S3_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"];
// vector-worker's own flags (not part of the shared runtime).
const VECTOR_ONLY = /^(EMBED_|EMBEDDING_)/;

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

let vectorHelpCache;
export function vectorHelpNames() {
  if (!vectorHelpCache) {
    const bin = binaryPath("vector-worker");
    if (!existsSync(bin)) {
      throw new Error(`${bin} is missing: build it first (cargo build --bin vector-worker, or run scripts/test)`);
    }
    vectorHelpCache = helpEnvNames(bin);
  }
  return vectorHelpCache;
}

const notes = new Set();
/** Prints a note once per run. */
export function noteOnce(msg) {
  if (!notes.has(msg)) {
    notes.add(msg);
    console.log(`NOTE: ${msg}`);
  }
}

/**
 * The env names a worker reads: its binary's --help when the binary exists;
 * otherwise the shared runtime's names (those in vector-worker --help that
 * are not vector-only) plus the contract-only names.
 */
export function workerEnvNames(worker) {
  const bin = binaryPath(worker);
  if (existsSync(bin)) return { names: helpEnvNames(bin), source: `${bin} --help` };
  const shared = [...vectorHelpNames()].filter((n) => !VECTOR_ONLY.test(n));
  noteOnce(
    `${worker}: no binary at ${bin} yet; its env names are compared with the shared runtime's ` +
      `(vector-worker --help minus EMBED_*/EMBEDDING_*) plus the contract-only names ` +
      `${CONTRACT_ONLY_ENV.join(", ")}. The per-binary comparison happens automatically once it is built.`,
  );
  return { names: new Set([...shared, ...CONTRACT_ONLY_ENV]), source: "shared runtime names + contract-only names" };
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

/** [{name, from}] for a container: envFrom sources resolved, plus env. */
export function containerEnv(objects, c) {
  const out = [];
  for (const src of c.envFrom ?? []) {
    const ref = src.configMapRef ?? src.secretRef;
    const kind = src.configMapRef ? "ConfigMap" : "Secret";
    const obj = objects.find((o) => o.kind === kind && o.metadata.name === ref?.name);
    if (!obj) {
      if (!ref?.optional) out.push({ name: null, from: `${kind}/${ref?.name} (referenced by envFrom, not rendered)` });
      continue;
    }
    for (const k of Object.keys({ ...(obj.data ?? {}), ...(obj.stringData ?? {}) }))
      out.push({ name: (src.prefix ?? "") + k, from: `${kind}/${obj.metadata.name} key ${k}` });
  }
  for (const e of c.env ?? []) out.push({ name: e.name, from: `env ${e.name}` });
  return out;
}
