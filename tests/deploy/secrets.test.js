// No rendered kustomization ships a placeholder Secret. Operators create the
// workers' and KEDA's Secrets before applying (k8s/README.md "Apply"); any
// Secret of the same name in the manifests would be applied over the real one
// by every `kubectl apply -k`. So:
//
// - only the dev-only kustomizations (DEV_ONLY, lib/common.js) render
//   Secrets, marked with the bookmarkai.io/throwaway annotation;
// - no Secret value anywhere is a placeholder (CHANGE_ME and the like).
import assert from "node:assert/strict";
import { test } from "node:test";
import { DEV_ONLY, renderAll, id } from "./lib/common.js";

const PLACEHOLDER = /change[_-]?me|replace[_-]?me|<[a-z_ -]*(password|secret|key|token)[a-z_ -]*>|\bTODO\b|\bFIXME\b/i;

function values(secret) {
  return [
    ...Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(String(v), "base64").toString("utf8")]),
    ...Object.entries(secret.stringData ?? {}),
  ];
}

for (const { rel, objects } of renderAll()) {
  test(`no placeholder Secrets: ${rel}`, () => {
    const problems = [];
    for (const s of objects.filter((o) => o.kind === "Secret")) {
      if (!DEV_ONLY.has(rel))
        problems.push(`${id(s)}: rendered by ${rel}; \`kubectl apply -k\` would overwrite the real Secret operators create (generate throwaway ones in a dev-only overlay only)`);
      else if (!s.metadata.annotations?.["bookmarkai.io/throwaway"])
        problems.push(`${id(s)}: a dev-only Secret without the bookmarkai.io/throwaway annotation`);
      for (const [k, v] of values(s))
        if (PLACEHOLDER.test(v)) problems.push(`${id(s)}: key ${k} holds a placeholder value`);
    }
    assert.deepEqual(problems, [], `${rel}:\n  ${problems.join("\n  ")}`);
  });
}
