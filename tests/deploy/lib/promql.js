// Metric names referenced by a PromQL expression (no full parser: strings,
// label matchers, ranges and grouping clauses are removed, then every
// identifier that is not a function/aggregation call or keyword is a metric).
const KEYWORDS = new Set([
  "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
  "and", "or", "unless", "offset", "inf", "nan", "atan2", "start", "end",
]);

export function metricNames(expr) {
  let s = String(expr);
  s = s.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  s = s.replace(/\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*/g, " "); // Grafana variables
  s = s.replace(/\{[^{}]*\}/g, " ");
  s = s.replace(/\[[^\]]*\]/g, " ");
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ");
  s = s.replace(/@\s*(start|end)\s*\(\s*\)/g, " ");
  const names = new Set();
  for (const m of s.matchAll(/(?<![\w.:])([A-Za-z_:][A-Za-z0-9_:]*)/g)) {
    const name = m[1];
    const rest = s.slice(m.index + name.length);
    if (/^\s*\(/.test(rest)) continue; // function or aggregation
    if (KEYWORDS.has(name.toLowerCase())) continue;
    names.add(name);
  }
  return names;
}
