// k8s/README.md as the checks read it: fenced code blocks by language, the
// shell commands in them (continuations joined, pipelines split), headings.
import { readFileSync } from "node:fs";
import path from "node:path";
import { K8S_DIR } from "./common.js";

export const README = path.join(K8S_DIR, "README.md");

export function readmeText() {
  return readFileSync(README, "utf8");
}

// A fenced block: ```lang ... ```; fences may be indented (list items).
const FENCE = /^[ \t]*```([\w-]*)[^\n]*\n([\s\S]*?)^[ \t]*```[ \t]*$/gm;

/** [{lang, body, line}] of every fenced block, body dedented. */
export function blocks(text = readmeText()) {
  return [...text.matchAll(FENCE)].map((m) => ({
    lang: m[1],
    body: m[2].replace(/^[ \t]+/gm, ""),
    line: text.slice(0, m.index).split("\n").length,
  }));
}

/** Markdown headings outside fenced blocks (text only, any level). */
export function headings(text = readmeText()) {
  return [...text.replace(FENCE, "").matchAll(/^#{1,6}\s+(.+?)\s*$/gm)].map((m) => m[1]);
}

/** Splits a shell line into words (quotes honoured, no expansion). */
export function words(line) {
  const out = [];
  for (const m of line.matchAll(/'([^']*)'|"((?:[^"\\]|\\.)*)"|(\S+)/g)) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}

/**
 * Every command line of the README's sh/bash/shell blocks: `\` continuations
 * joined, comments dropped, each pipeline split into its stages (words).
 * [{text, stages: [[word...]...], line}].
 */
export function commands(text = readmeText()) {
  const out = [];
  for (const b of blocks(text).filter((x) => /^(sh|bash|shell|console)$/.test(x.lang))) {
    const lines = b.body.replace(/\\\n\s*/g, " ").split("\n");
    lines.forEach((raw, i) => {
      const line = raw.replace(/^\s*\$\s+/, "").replace(/\s+#.*$/, "").trim();
      if (!line || line.startsWith("#")) return;
      out.push({ text: line, stages: line.split(/\s\|\s/).map((s) => words(s.trim())), line: b.line + 1 + i });
    });
  }
  return out;
}

/** The flag's value in `argv` (`-n X`, `-nX`, `--namespace X`, `--namespace=X`). */
export function flag(argv, short, long) {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === short || a === long) return argv[i + 1];
    if (long && a.startsWith(`${long}=`)) return a.slice(long.length + 1);
    if (short && a.startsWith(short) && a.length > short.length && !a.startsWith("--")) return a.slice(short.length);
  }
  return undefined;
}
