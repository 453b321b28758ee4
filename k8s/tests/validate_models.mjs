// Validates every object of rendered manifests against the JSON schemas of the
// npm kubernetes-models packages (core kinds and cert-manager CRDs). Unlike
// kubernetes-validate it checks enums and CRD kinds; it does not reject
// unknown fields, which kubernetes-validate --strict does.
//
// usage: node validate_models.mjs NODE_MODULES_DIR COVERED_KINDS_OUT FILE...
// Exit 1 if any object is invalid or has no model. COVERED_KINDS_OUT gets one
// "apiVersion kind" per line for the kinds that a model validated.
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [modulesDir, coveredOut, ...files] = process.argv.slice(2);
if (!modulesDir || !coveredOut || files.length === 0) {
  console.error("usage: node validate_models.mjs NODE_MODULES_DIR COVERED_KINDS_OUT FILE...");
  process.exit(2);
}
const { parseAllDocuments } = await import(
  pathToFileURL(join(modulesDir, "yaml", "dist", "index.js")).href
);
const packages = ["kubernetes-models", "@kubernetes-models/cert-manager"];

function modelPath(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  for (const pkg of packages) {
    const dir = group === "" ? join(modulesDir, pkg, version) : join(modulesDir, pkg, group, version);
    const file = join(dir, `${kind}.js`);
    if (existsSync(file)) return file;
  }
  return null;
}

let failures = 0;
let checked = 0;
const covered = new Set();
for (const file of files) {
  const docs = parseAllDocuments(readFileSync(file, "utf8"));
  for (const doc of docs) {
    if (doc.errors.length > 0) {
      console.error(`${file}: YAML error: ${doc.errors[0].message}`);
      failures++;
      continue;
    }
    const obj = doc.toJS();
    if (obj === null || obj === undefined) continue;
    const id = `${file}: ${obj.kind}/${obj.metadata?.name}`;
    if (typeof obj.apiVersion !== "string" || typeof obj.kind !== "string") {
      console.error(`${id}: no apiVersion or kind`);
      failures++;
      continue;
    }
    const path = modelPath(obj.apiVersion, obj.kind);
    if (path === null) {
      console.error(`${id}: no kubernetes-models schema for ${obj.apiVersion} ${obj.kind}`);
      failures++;
      continue;
    }
    const mod = await import(pathToFileURL(path).href);
    const Model = mod[obj.kind] ?? mod.default;
    try {
      new Model(obj).validate();
      covered.add(`${obj.apiVersion} ${obj.kind}`);
      checked++;
    } catch (e) {
      console.error(`${id}: ${e.message}`);
      failures++;
    }
  }
}
writeFileSync(coveredOut, [...covered].sort().join("\n") + "\n");
console.log(`kubernetes-models: ${checked} objects valid, ${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
