// Every rendered object validates against the bundled schemas of
// kubernetes-models, @kubernetes-models/keda and
// @kubernetes-models/prometheus-operator. An apiVersion/kind without a
// schema fails: nothing goes unvalidated.
import assert from "node:assert/strict";
import { test } from "node:test";
import { renderAll, id } from "./lib/common.js";

const MODULES = {
  v1: "kubernetes-models/v1",
  "apps/v1": "kubernetes-models/apps/v1",
  "policy/v1": "kubernetes-models/policy/v1",
  "networking.k8s.io/v1": "kubernetes-models/networking.k8s.io/v1",
  "autoscaling/v2": "kubernetes-models/autoscaling/v2",
  "keda.sh/v1alpha1": "@kubernetes-models/keda/keda.sh/v1alpha1",
  "monitoring.coreos.com/v1": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1",
};

async function modelFor(o) {
  const mod = MODULES[o.apiVersion];
  if (!mod) return null;
  const m = await import(mod);
  return m[o.kind] ?? null;
}

for (const { rel, objects } of renderAll()) {
  test(`schemas: ${rel}`, async () => {
    const problems = [];
    for (const o of objects) {
      const Model = await modelFor(o);
      if (!Model) {
        problems.push(`${id(o)}: no schema for apiVersion ${o.apiVersion} kind ${o.kind} (unknown kind)`);
        continue;
      }
      try {
        new Model(structuredClone(o)).validate();
      } catch (e) {
        const details = (e.errors ?? []).map((x) => `${x.instancePath || "/"} ${x.message}`).join("; ");
        problems.push(`${id(o)}: ${details || e.message}`);
      }
    }
    assert.deepEqual(problems, [], `${rel}: objects failing schema validation:\n  ${problems.join("\n  ")}`);
  });
}
