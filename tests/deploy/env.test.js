// Every env name given to a worker (ConfigMaps and Secrets it loads with
// envFrom, and env blocks) is one that binary reads, per its own --help (plus
// candle's thread variables for the candle workers; lib/common.js
// workerEnvNames), and every ConfigMap/Secret key is one some worker reads.
import assert from "node:assert/strict";
import { test } from "node:test";
import { allWorkerEnvNames, WORKERS, renderAll, id, containersOf, containerEnv, workerEnvNames } from "./lib/common.js";

for (const { rel, objects } of renderAll()) {
  test(`env names: ${rel}`, () => {
    const problems = [];
    const anyWorker = allWorkerEnvNames();
    // Secrets read by KEDA (TriggerAuthentication), not by a worker.
    const kedaSecrets = new Set(
      objects
        .filter((o) => o.kind === "TriggerAuthentication")
        .flatMap((o) => (o.spec.secretTargetRef ?? []).map((r) => r.name)),
    );
    for (const o of objects) {
      if ((o.kind === "ConfigMap" || o.kind === "Secret") && !kedaSecrets.has(o.metadata.name)) {
        for (const k of Object.keys({ ...(o.data ?? {}), ...(o.stringData ?? {}) }))
          if (!anyWorker.has(k)) problems.push(`${id(o)}: key ${k} is not an env name any worker reads`);
      }
      if (o.kind !== "Deployment") continue;
      const worker = o.metadata.name;
      for (const { c, field, init } of containersOf(o)) {
        const env = containerEnv(objects, c);
        const known = !init && WORKERS[worker] ? workerEnvNames(worker) : null;
        for (const { name, from } of env) {
          if (name === null) problems.push(`${id(o)} ${field}: ${from}`);
          else if (!anyWorker.has(name)) problems.push(`${id(o)} ${field}: ${name} (${from}) is not an env name any worker reads`);
          else if (known && !known.names.has(name))
            problems.push(`${id(o)} ${field}: ${name} (${from}) is not read by ${worker} (per ${known.source})`);
        }
      }
    }
    assert.deepEqual(problems, [], `${rel}:\n  ${problems.join("\n  ")}`);
  });
}
