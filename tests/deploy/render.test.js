// kubectl kustomize renders the base and every overlay, each with every
// worker's Deployment, Service, ScaledObject (<worker>-scaler) and PDB, all
// in the workers' namespace (NAMESPACE, the one k8s/README.md's commands
// use); a regional overlay adds its Prometheus in namespace monitoring. The
// global receiver of the regions' metrics renders too.
import assert from "node:assert/strict";
import { test } from "node:test";
import { KUSTOMIZATIONS, NAMESPACE, OTHER_KUSTOMIZATIONS, REGIONS, WORKERS, render, id } from "./lib/common.js";

const CLUSTER_SCOPED = new Set(["ClusterRole", "ClusterRoleBinding"]);
// What a regional overlay puts outside the workers' namespace: the region's
// Prometheus for the fleet (components/region/prometheus.yaml).
const REGIONAL_ELSEWHERE = { monitoring: ["Prometheus/ml-workers", "ServiceAccount/ml-workers-prometheus"] };

const NAMES = { Deployment: (w) => w, Service: (w) => w, ScaledObject: (w) => `${w}-scaler`, PodDisruptionBudget: (w) => w };

for (const rel of KUSTOMIZATIONS) {
  test(`kustomize renders ${rel}`, () => {
    const objects = render(rel);
    assert.ok(objects.length > 0, `${rel}: rendered nothing`);
    for (const w of Object.keys(WORKERS)) {
      for (const [kind, name] of Object.entries(NAMES)) {
        assert.ok(
          objects.some((o) => o.kind === kind && o.metadata?.name === name(w)),
          `${rel}: ${kind}/${name(w)} is missing`,
        );
      }
    }
    const ns = objects.filter((o) => o.kind === "Namespace").map((o) => o.metadata.name);
    assert.deepEqual(ns, [NAMESPACE], `${rel}: renders Namespaces ${ns.join(", ")}, expected ${NAMESPACE}`);
    for (const o of objects) {
      if (o.kind === "Namespace" || CLUSTER_SCOPED.has(o.kind)) continue;
      const elsewhere = REGIONS[rel] ? REGIONAL_ELSEWHERE[o.metadata?.namespace] ?? [] : [];
      if (elsewhere.includes(id(o))) continue;
      assert.equal(o.metadata?.namespace, NAMESPACE, `${rel}: ${id(o)} metadata.namespace is not ${NAMESPACE}`);
    }
  });
}

for (const rel of OTHER_KUSTOMIZATIONS) {
  test(`kustomize renders ${rel}`, () => {
    assert.ok(render(rel).length > 0, `${rel}: rendered nothing`);
  });
}
