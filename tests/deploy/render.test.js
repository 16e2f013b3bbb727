// kubectl kustomize renders the base and every overlay.
import assert from "node:assert/strict";
import { test } from "node:test";
import { KUSTOMIZATIONS, WORKERS, render, id } from "./lib/common.js";

for (const rel of KUSTOMIZATIONS) {
  test(`kustomize renders ${rel}`, () => {
    const objects = render(rel);
    assert.ok(objects.length > 0, `${rel}: rendered nothing`);
    for (const w of Object.keys(WORKERS)) {
      for (const kind of ["Deployment", "Service", "ScaledObject", "PodDisruptionBudget"]) {
        assert.ok(
          objects.some((o) => o.kind === kind && o.metadata?.name === w),
          `${rel}: ${kind}/${w} is missing`,
        );
      }
    }
    for (const o of objects) {
      if (o.kind === "Namespace") continue;
      assert.equal(o.metadata?.namespace, "ml-workers", `${rel}: ${id(o)} metadata.namespace is not ml-workers`);
    }
  });
}
