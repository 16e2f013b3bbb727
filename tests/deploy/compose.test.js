// docker/compose.yaml (when present): parses; every file it references
// exists; the workers' env names are ones they read and that the Kubernetes
// manifests also set; their metrics ports are the contract's; candle workers
// run as many threads as their CPU limit.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { CANDLE_THREAD_ENV, DOCKER_DIR, WORKERS, containerEnv, render, readYamlFile, workerEnvNames } from "./lib/common.js";

const COMPOSE = ["compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"]
  .map((f) => path.join(DOCKER_DIR, f))
  .find((f) => existsSync(f));

function envNames(svc) {
  const env = svc.environment ?? {};
  if (Array.isArray(env)) return env.map((e) => String(e).split("=")[0]);
  return Object.keys(env);
}
function envValue(svc, name) {
  const env = svc.environment ?? {};
  if (Array.isArray(env)) {
    const e = env.find((x) => String(x).split("=")[0] === name);
    return e === undefined ? undefined : String(e).split("=").slice(1).join("=");
  }
  return env[name] === undefined || env[name] === null ? undefined : String(env[name]);
}
/** A compose value with `${VAR:-default}` / `${VAR-default}` read as its default. */
function withDefaults(value) {
  return value === undefined ? undefined : String(value).replace(/\$\{[A-Z0-9_]+:?-([^}]*)\}/g, "$1");
}
/** Which contract worker a compose service runs (by service name or image). */
function workerOf(name, svc) {
  return Object.keys(WORKERS).find((w) => name === w || String(svc.image ?? "").includes(`/${w}:`) || String(svc.image ?? "").includes(`/${w}`));
}

test("compose file parses and references only existing files", { skip: !COMPOSE && "docker/compose.yaml not present" }, () => {
  const dir = path.dirname(COMPOSE);
  const doc = readYamlFile(COMPOSE);
  const rel = path.relative(path.resolve(DOCKER_DIR, ".."), COMPOSE);
  assert.ok(doc?.services && typeof doc.services === "object", `${rel}: has no services`);
  const problems = [];
  const mustExist = (p, where) => {
    if (/\$\{?[A-Za-z_]/.test(p)) return; // variable: resolved at run time
    if (!existsSync(path.resolve(dir, p))) problems.push(`${rel} ${where}: ${p} does not exist`);
  };
  for (const [name, svc] of Object.entries(doc.services)) {
    if (svc.build) {
      const b = typeof svc.build === "string" ? { context: svc.build } : svc.build;
      const ctx = b.context ?? ".";
      if (!/^[a-z]+:\/\//.test(ctx)) {
        mustExist(ctx, `services.${name}.build.context`);
        mustExist(path.join(ctx, b.dockerfile ?? "Dockerfile"), `services.${name}.build.dockerfile`);
      }
    }
    (svc.volumes ?? []).forEach((v, i) => {
      const src = typeof v === "string" ? v.split(":")[0] : v.type === "bind" ? v.source : null;
      if (src && /^[.\/~]/.test(src)) mustExist(src, `services.${name}.volumes[${i}]`);
    });
    const envFiles = svc.env_file === undefined ? [] : [svc.env_file].flat();
    envFiles.forEach((e, i) => {
      const p = typeof e === "string" ? e : e.path;
      if (typeof e === "object" && e.required === false) return;
      mustExist(p, `services.${name}.env_file[${i}]`);
    });
    for (const kind of ["configs", "secrets"])
      (svc[kind] ?? []).forEach((c, i) => {
        const ref = typeof c === "string" ? c : c.source;
        if (!doc[kind]?.[ref]) problems.push(`${rel} services.${name}.${kind}[${i}]: ${ref} is not defined under top-level ${kind}`);
      });
  }
  for (const kind of ["configs", "secrets"])
    for (const [n, c] of Object.entries(doc[kind] ?? {})) if (c?.file) mustExist(c.file, `${kind}.${n}.file`);
  assert.deepEqual(problems, [], problems.join("\n"));
});

test("compose workers use the manifests' env names and the contract's ports", { skip: !COMPOSE && "docker/compose.yaml not present" }, () => {
  const doc = readYamlFile(COMPOSE);
  const rel = path.relative(path.resolve(DOCKER_DIR, ".."), COMPOSE);
  const base = render("base");
  const problems = [];
  const seen = new Set();
  for (const [name, svc] of Object.entries(doc.services ?? {})) {
    const worker = workerOf(name, svc);
    if (!worker) continue;
    seen.add(worker);
    const deploy = base.find((o) => o.kind === "Deployment" && o.metadata.name === worker);
    const k8sNames = new Set(containerEnv(base, deploy.spec.template.spec.containers[0]).map((e) => e.name));
    // Other spellings of settings the manifests make (the binaries accept both).
    if (k8sNames.has("POSTGRES_HOST")) k8sNames.add("DATABASE_URL");
    if (k8sNames.has("DATABASE_URL")) ["POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD"].forEach((n) => k8sNames.add(n));
    const known = workerEnvNames(worker);
    for (const n of envNames(svc)) {
      if (!known.names.has(n)) problems.push(`${rel} services.${name}.environment: ${n} is not read by ${worker} (per ${known.source})`);
      else if (!k8sNames.has(n)) problems.push(`${rel} services.${name}.environment: ${n} is not set by the k8s manifests for ${worker} (add it to k8s/base/configmap.yaml or drop it here)`);
    }
    const port = WORKERS[worker].port;
    const envPort = envValue(svc, "PROMETHEUS_METRICS_PORT");
    if (envPort !== undefined && envPort !== String(port))
      problems.push(`${rel} services.${name}.environment.PROMETHEUS_METRICS_PORT is ${envPort}, the contract (and k8s) say ${port}`);
    for (const [i, p] of (svc.ports ?? []).entries()) {
      const target = typeof p === "object" ? String(p.target) : String(p).split(":").pop().split("/")[0];
      if (target !== String(port)) problems.push(`${rel} services.${name}.ports[${i}]: container port ${target}, the contract says ${port}`);
    }
    for (const [i, p] of (svc.expose ?? []).entries())
      if (String(p).split("/")[0] !== String(port)) problems.push(`${rel} services.${name}.expose[${i}]: ${p}, the contract says ${port}`);
    if (WORKERS[worker].candle) {
      const cpus = withDefaults(svc.deploy?.resources?.limits?.cpus);
      for (const n of CANDLE_THREAD_ENV) {
        const threads = withDefaults(envValue(svc, n));
        if (cpus === undefined || threads !== String(Math.ceil(Number(cpus))))
          problems.push(`${rel} services.${name}.environment.${n} is ${threads}; candle's threads must match deploy.resources.limits.cpus (${cpus})`);
      }
    }
    const hc = JSON.stringify(svc.healthcheck?.test ?? "");
    if (svc.healthcheck && !/(healthz|readyz)/.test(hc))
      problems.push(`${rel} services.${name}.healthcheck does not probe /healthz or /readyz`);
  }
  for (const w of Object.keys(WORKERS)) if (!seen.has(w)) problems.push(`${rel}: no service runs ${w}`);
  assert.deepEqual(problems, [], problems.join("\n"));
});

test("compose file runs on Debian's docker-compose 1.29 as well as Compose v2", { skip: !COMPOSE && "docker/compose.yaml not present" }, () => {
  const doc = readYamlFile(COMPOSE);
  // 1.29 validates against a Compose Specification schema without `name`
  // ("'name' does not match any of the regexes: '^x-'"): scripts/test-stack
  // runs this file with it, unchanged. The project name comes from -p.
  assert.equal(doc.name, undefined, "top-level `name:` is rejected by docker-compose 1.29; use -p / COMPOSE_PROJECT_NAME");
});

test("compose tmpfs mounts are bounded and downloads land on disk", { skip: !COMPOSE && "docker/compose.yaml not present" }, () => {
  const doc = readYamlFile(COMPOSE);
  const problems = [];
  for (const [name, svc] of Object.entries(doc.services ?? {})) {
    // A tmpfs is RAM: without size= it may take the whole host's memory.
    for (const t of [svc.tmpfs ?? []].flat()) {
      if (!/(^|[:,])size=/.test(String(t))) problems.push(`services.${name}.tmpfs ${t}: no size= (RAM, unbounded)`);
    }
    const worker = workerOf(name, svc);
    if (!worker || !WORKERS[worker].downloads) continue;
    // Downloads of up to MEDIA_MAX_BYTES go to MEDIA_TEMP_DIR, else /tmp: that
    // folder must not be a tmpfs (RAM inside the container's memory limit).
    const tempDir = withDefaults(envValue(svc, "MEDIA_TEMP_DIR")) ?? "/tmp";
    const onTmpfs = [svc.tmpfs ?? []].flat().some((t) => String(t).split(":")[0] === tempDir);
    if (onTmpfs) problems.push(`services.${name}: its download folder ${tempDir} is a tmpfs (RAM); mount a volume there`);
    const mounted = (svc.volumes ?? []).some((v) => (typeof v === "string" ? v.split(":")[1] : v.target) === tempDir);
    if (!mounted) problems.push(`services.${name}: no volume at its download folder ${tempDir} (the root filesystem is read-only)`);
  }
  assert.deepEqual(problems, [], problems.join("\n"));
});
