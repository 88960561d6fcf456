// Parses an AsyncAPI document with the AsyncAPI project's own parser and exits non-zero
// on any error diagnostic (warnings are printed, not fatal).
//   node tools/asyncapi/check.mjs schemas/asyncapi.yaml
import { readFile } from "node:fs/promises";
import { Parser, DiagnosticSeverity } from "@asyncapi/parser";

const path = process.argv[2];
if (!path) {
  console.error("usage: node check.mjs FILE");
  process.exit(2);
}
const parser = new Parser();
const { document, diagnostics } = await parser.parse(await readFile(path, "utf8"), {
  source: path,
});
const where = (d) => (d.path && d.path.length ? d.path.join(".") : "(document)");
let errors = 0;
for (const d of diagnostics) {
  const level = d.severity === DiagnosticSeverity.Error ? "error" : "warning";
  if (level === "error") errors += 1;
  console.log(`${path}: ${level}: ${where(d)}: ${d.message} [${d.code}]`);
}
if (errors || !document) {
  console.log(`${path}: ${errors} error(s)`);
  process.exit(1);
}
console.log(
  `${path}: valid AsyncAPI ${document.version()}: ${document.channels().length} channels, ` +
    `${document.operations().length} operations, ${document.messages().length} messages`,
);
