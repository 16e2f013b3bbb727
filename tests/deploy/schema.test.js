// Every rendered object validates against the bundled schemas of
// kubernetes-models, @kubernetes-models/keda and
// @kubernetes-models/prometheus-operator. An apiVersion/kind without a
// schema fails: nothing goes unvalidated.
//
// The schemas alone accept fields they do not know (a misspelt
// `readinesProbe` or a ScaledObject `spec.behavior` would pass), which the API
// server rejects under `kubectl apply --validate=strict` or silently drops.
// So every object is also checked for unknown fields: the compiled validator
// reads each property its schema declares (and every key of a map-typed
// field), so a key it never reads is one the schema does not have.
import assert from "node:assert/strict";
import { test } from "node:test";
import { OTHER_KUSTOMIZATIONS, render, renderAll, id } from "./lib/common.js";

const MODULES = {
  v1: "kubernetes-models/v1",
  "apps/v1": "kubernetes-models/apps/v1",
  "policy/v1": "kubernetes-models/policy/v1",
  "networking.k8s.io/v1": "kubernetes-models/networking.k8s.io/v1",
  "autoscaling/v2": "kubernetes-models/autoscaling/v2",
  "rbac.authorization.k8s.io/v1": "kubernetes-models/rbac.authorization.k8s.io/v1",
  "keda.sh/v1alpha1": "@kubernetes-models/keda/keda.sh/v1alpha1",
  "monitoring.coreos.com/v1": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1",
};

async function modelFor(o) {
  const mod = MODULES[o.apiVersion];
  if (!mod) return null;
  const m = await import(mod);
  return m[o.kind] ?? null;
}

/** Paths of the keys of `o` that `Model`'s schema does not declare. */
function unknownFields(Model, o) {
  const visited = [];
  // A copy of the tree in which every object records the keys read from it.
  const watch = (value, path) => {
    if (value === null || typeof value !== "object") return value;
    const read = new Set();
    visited.push({ path, value, read });
    const copy = Array.isArray(value)
      ? value.map((v, i) => watch(v, `${path}[${i}]`))
      : Object.fromEntries(Object.entries(value).map(([k, v]) => [k, watch(v, `${path}.${k}`)]));
    return new Proxy(copy, {
      get(target, key, receiver) {
        if (typeof key === "string") read.add(key);
        return Reflect.get(target, key, receiver);
      },
    });
  };
  Model.prototype.validate.call(watch(o, ""));
  const unknown = [];
  // Pre-order: an unknown field comes before (and stands for) its contents.
  for (const { path, value, read } of visited) {
    if (Array.isArray(value) || unknown.some((u) => path === u || path.startsWith(u + ".") || path.startsWith(u + "["))) continue;
    for (const k of Object.keys(value)) if (!read.has(k)) unknown.push(`${path}.${k}`);
  }
  return unknown.map((p) => p.slice(1));
}

const everything = [...renderAll(), ...OTHER_KUSTOMIZATIONS.map((rel) => ({ rel, objects: render(rel) }))];
/**
 * `o` as the API server decodes it. kustomize folds a long Secret value over
 * several lines (a `|` block, newlines included); Go's base64 decoder, which
 * reads Secret data, ignores \r and \n, while the schema's "byte" format
 * does not.
 */
function asApiServerReads(o) {
  const copy = structuredClone(o);
  if (copy.kind === "Secret" && copy.data)
    for (const k of Object.keys(copy.data)) copy.data[k] = String(copy.data[k]).replace(/[\r\n]/g, "");
  return copy;
}

for (const { rel, objects } of everything) {
  test(`schemas: ${rel}`, async () => {
    const problems = [];
    for (const o of objects) {
      const Model = await modelFor(o);
      if (!Model) {
        problems.push(`${id(o)}: no schema for apiVersion ${o.apiVersion} kind ${o.kind} (unknown kind)`);
        continue;
      }
      try {
        new Model(asApiServerReads(o)).validate();
      } catch (e) {
        const details = (e.errors ?? []).map((x) => `${x.instancePath || "/"} ${x.message}`).join("; ");
        problems.push(`${id(o)}: ${details || e.message}`);
        continue;
      }
      for (const field of unknownFields(Model, asApiServerReads(o))) problems.push(`${id(o)}: ${field} is not a field of ${o.kind}`);
    }
    assert.deepEqual(problems, [], `${rel}: objects failing schema validation:\n  ${problems.join("\n  ")}`);
  });
}
