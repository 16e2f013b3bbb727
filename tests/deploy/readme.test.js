// k8s/README.md's commands work verbatim against the rendered manifests.
//
// Every `kubectl` line in its shell blocks is read as kubectl would: a
// command about the workers' objects must name the workers' namespace
// (NAMESPACE, bookmarkai-ml) and every object it names must be rendered by
// every kustomization of the workers: Deployments (`deployment/NAME`),
// ScaledObjects, HPAs (KEDA names its HPA keda-hpa-<ScaledObject>, see
// keda.test.js), label selectors (`-l app=NAME` selects the pods of
// Deployment NAME and nothing else), kustomize directories. The Secrets its
// `kubectl create secret` lines make are exactly the ones the manifests read,
// with the same keys. It keeps the original deployment README's promises
// (namespace, <worker>-scaler names, app= labels, keda-hpa- HPAs,
// `grep AMQP`, the busy ratio by worker_type) and has the sections its
// production checklist points at. (Whether `kubectl logs ... | grep AMQP`
// finds a line, and the busy ratio's labels, need running workers:
// metrics.test.js.)
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import {
  KUSTOMIZATIONS, K8S_DIR, NAMESPACE, OTHER_KUSTOMIZATIONS, REGIONS, REPO_ROOT, WORKERS,
  keysOf, operatorSecrets, render, renderAll, selects,
} from "./lib/common.js";
import { blocks, commands, flag, headings, readmeText } from "./lib/readme.js";

const KINDS = {
  deployment: "Deployment", deployments: "Deployment", deploy: "Deployment",
  scaledobject: "ScaledObject", scaledobjects: "ScaledObject", so: "ScaledObject",
  hpa: "HorizontalPodAutoscaler", horizontalpodautoscaler: "HorizontalPodAutoscaler", horizontalpodautoscalers: "HorizontalPodAutoscaler",
  pod: "Pod", pods: "Pod", po: "Pod",
  service: "Service", services: "Service", svc: "Service",
  pvc: "PersistentVolumeClaim", persistentvolumeclaim: "PersistentVolumeClaim",
  pdb: "PodDisruptionBudget", poddisruptionbudget: "PodDisruptionBudget",
  configmap: "ConfigMap", configmaps: "ConfigMap", cm: "ConfigMap",
  networkpolicy: "NetworkPolicy", networkpolicies: "NetworkPolicy", netpol: "NetworkPolicy",
  servicemonitor: "ServiceMonitor", servicemonitors: "ServiceMonitor",
  prometheusrule: "PrometheusRule", prometheusrules: "PrometheusRule",
  triggerauthentication: "TriggerAuthentication", triggerauthentications: "TriggerAuthentication",
  secret: "Secret", secrets: "Secret",
};
// Namespaces of other software the README's commands may look into (KEDA's
// operator, RabbitMQ, Prometheus), whose objects these manifests do not make.
const OTHER_NAMESPACES = new Set(["keda", "rabbitmq", "monitoring", "kube-system"]);
const VALUE_FLAGS = new Set(["-n", "--namespace", "-l", "--selector", "-o", "--output", "-f", "--filename", "-k", "--kustomize",
  "-c", "--container", "--context", "--tail", "--since", "--from-literal", "--from-file", "--dry-run", "--sort-by", "--timeout", "-L"]);

/** The verb and positional arguments of a kubectl command. */
function parse(argv) {
  const pos = [];
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith("-")) {
      if (VALUE_FLAGS.has(a)) i++;
      continue;
    }
    pos.push(a);
  }
  return { verb: pos[0], args: pos.slice(1) };
}

/** {key: value} of an equality selector (`a=b,c==d`); null if it has other forms. */
function equalitySelector(sel) {
  const out = {};
  for (const part of sel.split(",")) {
    const m = part.match(/^([\w./-]+)==?([\w.-]+)$/);
    if (!m) return null;
    out[m[1]] = m[2];
  }
  return out;
}

const rendered = renderAll();
const workloads = (objects) => objects.filter((o) => ["Deployment", "StatefulSet", "DaemonSet"].includes(o.kind));

/** Problems with one kubectl command of the README. */
function commandProblems({ text, stages }) {
  const argv = stages[0];
  const p = [];
  const { verb, args } = parse(argv);
  const ns = flag(argv, "-n", "--namespace");
  const dir = flag(argv, "-k", "--kustomize") ?? (verb === "kustomize" ? args[0] : undefined);
  if (dir !== undefined) {
    // The README writes paths from the repository root (k8s/...).
    const rel = dir.startsWith("k8s/") ? path.normalize(dir.slice(4)) : path.relative(K8S_DIR, path.resolve(REPO_ROOT, dir));
    if (![...KUSTOMIZATIONS, ...OTHER_KUSTOMIZATIONS].includes(rel) || !existsSync(path.join(K8S_DIR, rel)))
      p.push(`names ${dir}, which is not one of the kustomizations the checks render`);
  }
  if (verb === "create" && args[0] === "namespace" && args[1] !== NAMESPACE) p.push(`creates namespace ${args[1]}, the manifests use ${NAMESPACE}`);

  // Objects named: TYPE/NAME words, or `get|describe TYPE NAME...`.
  const refs = [];
  for (const a of args) {
    const m = a.match(/^([a-z]+)\/([\w.-]+)$/);
    if (m && KINDS[m[1]]) refs.push({ kind: KINDS[m[1]], name: m[2] });
  }
  let listed = [];
  if (["get", "describe", "delete", "edit", "top"].includes(verb) && args[0] && !args[0].includes("/")) {
    listed = args[0].split(",").map((t) => KINDS[t]).filter(Boolean);
    if (listed.length === 1) for (const name of args.slice(1)) refs.push({ kind: listed[0], name });
  }
  const selector = flag(argv, "-l", "--selector");
  if (ns !== undefined && ns !== NAMESPACE && !OTHER_NAMESPACES.has(ns)) p.push(`uses namespace ${ns}; the workers' is ${NAMESPACE}`);
  // About the kinds of objects the manifests make (listed, named or selected).
  const aboutWorkers = refs.length > 0 || selector !== undefined || listed.length > 0;
  if (!aboutWorkers || verb === "create") return p;

  if (ns === undefined) return [...p, `names the workers' objects without -n ${NAMESPACE} (kubectl would look in the default namespace)`];
  if (ns !== NAMESPACE) return p; // another program's objects (KEDA's operator, ...)
  for (const { rel, objects } of rendered) {
    for (const { kind, name } of refs) {
      if (kind === "HorizontalPodAutoscaler") {
        const so = name.replace(/^keda-hpa-/, "");
        if (!name.startsWith("keda-hpa-") || !objects.some((o) => o.kind === "ScaledObject" && o.metadata.name === so))
          p.push(`${rel}: HPA ${name} is not keda-hpa-<ScaledObject> of a rendered ScaledObject`);
      } else if (kind === "Pod") {
        p.push(`names pod ${name}; pod names are generated, select them with -l`);
      } else if (!objects.some((o) => o.kind === kind && o.metadata.name === name && o.metadata.namespace === NAMESPACE))
        p.push(`${rel}: renders no ${kind}/${name} in ${NAMESPACE}`);
    }
    if (selector !== undefined) {
      const labels = equalitySelector(selector);
      if (!labels) {
        p.push(`selector ${selector} is not a plain equality selector the check can read`);
        continue;
      }
      const onDeployments = listed.includes("Deployment");
      const hit = workloads(objects).filter((w) => selects({ matchLabels: labels }, onDeployments ? w.metadata.labels : w.spec.template.metadata?.labels));
      if (!hit.length) p.push(`${rel}: -l ${selector} selects no ${onDeployments ? "Deployment" : "pods"}`);
      if (labels.app !== undefined && !(hit.length === 1 && hit[0].kind === "Deployment" && hit[0].metadata.name === labels.app))
        p.push(`${rel}: -l ${selector} must select the ${onDeployments ? "Deployment" : "pods"} of Deployment ${labels.app} only, selects ${hit.map((w) => w.metadata.name).join(", ") || "nothing"}`);
    }
  }
  return p;
}

test("k8s/README.md's kubectl commands name what the manifests render", () => {
  const problems = [];
  const kubectl = commands().filter((c) => c.stages[0][0] === "kubectl");
  assert.ok(kubectl.length > 10, `found only ${kubectl.length} kubectl commands in k8s/README.md`);
  for (const c of kubectl) for (const p of commandProblems(c)) problems.push(`k8s/README.md:${c.line} \`${c.text}\`: ${p}`);
  assert.deepEqual([...new Set(problems)], [], [...new Set(problems)].join("\n"));
});

test("k8s/README.md keeps the deployment README's promises", () => {
  const cmds = commands().map((c) => c.text);
  const has = (re) => cmds.some((t) => re.test(t));
  const problems = [];
  const nsFlag = `(-n|--namespace)[ =]${NAMESPACE}\\b`;
  for (const w of Object.keys(WORKERS)) {
    if (!has(new RegExp(`^kubectl .*-l app=${w}\\b`)) || !has(new RegExp(`^kubectl .*-l app=${w}\\b.*${nsFlag}|^kubectl .*${nsFlag}.*-l app=${w}\\b`)))
      problems.push(`no \`kubectl ... -n ${NAMESPACE} -l app=${w}\` command`);
    if (!has(new RegExp(`^kubectl .*scaledobject ${w}-scaler\\b`))) problems.push(`no command naming ScaledObject ${w}-scaler`);
  }
  if (!has(/^kubectl .*get hpa\b/)) problems.push("no `kubectl get hpa` command (the KEDA-made HPAs)");
  if (!has(/^kubectl .*logs .*deployment\/llm-worker .*\| grep AMQP$/)) problems.push("no `kubectl logs deployment/llm-worker | grep AMQP` command");
  const promql = blocks().filter((b) => b.lang === "promql").map((b) => b.body).join("\n");
  if (!/^sum\(celery_worker_busy\) by \(worker_type\)$/m.test(promql)) problems.push("no `sum(celery_worker_busy) by (worker_type)` query");
  assert.deepEqual(problems, [], problems.join("\n"));
});

test("k8s/README.md has the sections its production checklist points at", () => {
  const hs = headings();
  const problems = [];
  for (const h of ["Log aggregation", "Backups", "Load testing", "Multi-region"])
    if (!hs.some((x) => x === h || x.startsWith(`${h} `) || x.startsWith(`${h}:`))) problems.push(`no section "${h}"`);
  const text = readmeText();
  const load = text.split(/^#{1,6} Load testing.*$/m)[1]?.split(/^#{1,6} /m)[0] ?? "";
  if (!load.includes("scripts/scaling-rehearsal")) problems.push('section "Load testing" does not point at scripts/scaling-rehearsal');
  assert.deepEqual(problems, [], problems.join("\n"));
});

test("k8s/README.md creates exactly the Secrets the manifests read, with their keys", () => {
  const problems = [];
  const catalog = operatorSecrets();
  const created = new Map(); // name as written -> {keys, ns, line}
  for (const c of commands()) {
    const argv = c.stages[0];
    const { verb, args } = parse(argv);
    if (argv[0] !== "kubectl" || verb !== "create" || args[0] !== "secret") continue;
    const name = args[2];
    const keys = argv.flatMap((a, i) => (a === "--from-literal" || a === "--from-file" ? [argv[i + 1]] : a.match(/^--from-(?:literal|file)=(.*)$/) ? [a.split("=").slice(1).join("=")] : []))
      .map((kv) => kv.split("=")[0]);
    created.set(name, { keys: keys.sort(), ns: flag(argv, "-n", "--namespace"), line: c.line });
  }
  const regionSuffix = new RegExp(`-(\\$\\{?REGION\\}?|${Object.values(REGIONS).join("|")})$`);
  // The workers' and KEDA's Secrets (names and keys as the dev overlay generates them).
  for (const [name, secret] of catalog) {
    const want = keysOf(secret).sort();
    const plain = created.get(name);
    if (!plain) problems.push(`no \`kubectl create secret generic ${name}\` (the manifests read it)`);
    else {
      if (plain.ns !== NAMESPACE) problems.push(`k8s/README.md:${plain.line}: Secret ${name} is created in ${plain.ns ?? "the default namespace"}, not ${NAMESPACE}`);
      if (plain.keys.join() !== want.join()) problems.push(`k8s/README.md:${plain.line}: Secret ${name} gets keys ${plain.keys.join(", ")}; the manifests read ${want.join(", ")}`);
    }
  }
  // The regional copies the regional overlays read.
  const regional = new Set();
  for (const rel of Object.keys(REGIONS))
    for (const o of render(rel)) {
      for (const c of o.spec?.template?.spec?.containers ?? []) for (const s of c.envFrom ?? []) if (s.secretRef) regional.add(s.secretRef.name);
      if (o.kind === "TriggerAuthentication") for (const r of o.spec.secretTargetRef ?? []) regional.add(r.name);
    }
  for (const name of regional) {
    const region = Object.values(REGIONS).find((r) => name.endsWith(`-${r}`));
    if (!region) continue;
    const base = name.slice(0, -region.length - 1);
    const entry = [...created].find(([n]) => n.replace(regionSuffix, "") === base && n !== base);
    if (!entry) problems.push(`no \`kubectl create secret generic ${base}-$REGION\` for the regional Secret ${name}`);
    else if (entry[1].keys.join() !== keysOf(catalog.get(base)).sort().join())
      problems.push(`k8s/README.md:${entry[1].line}: ${entry[0]} gets keys ${entry[1].keys.join(", ")}; ${base} has ${keysOf(catalog.get(base)).sort().join(", ")}`);
  }
  // Secrets of the monitoring side (remote-write credentials): the keys the rendered objects read.
  const refs = new Map();
  for (const rel of [...Object.keys(REGIONS), ...OTHER_KUSTOMIZATIONS])
    for (const o of render(rel))
      for (const w of o.kind === "Prometheus" ? o.spec.remoteWrite ?? [] : [])
        for (const sel of [w.basicAuth?.username, w.basicAuth?.password].filter(Boolean))
          refs.set(sel.name, new Set([...(refs.get(sel.name) ?? []), sel.key]));
  for (const [name, keys] of refs) {
    const c = created.get(name);
    if (!c) problems.push(`no \`kubectl create secret generic ${name}\` (a Prometheus reads it)`);
    else for (const k of keys) if (!c.keys.includes(k)) problems.push(`k8s/README.md:${c.line}: Secret ${name} lacks key ${k}`);
  }
  for (const [name, c] of created) {
    const known = catalog.has(name) || refs.has(name) || catalog.has(name.replace(regionSuffix, ""));
    if (!known) problems.push(`k8s/README.md:${c.line}: creates Secret ${name}, which nothing in the manifests reads`);
  }
  assert.deepEqual(problems, [], problems.join("\n"));
});
