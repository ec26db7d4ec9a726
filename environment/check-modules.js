#!/usr/bin/env node
// Exit 0 when node_modules matches package-lock.json (every locked package present at its locked
// version; optional ones may be absent), 1 otherwise with the first few differences on stderr.
// Plain Node with no dependencies: it runs before `npm ci` to decide whether `npm ci` is needed.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
let lock;
try {
  lock = JSON.parse(fs.readFileSync(path.join(root, "package-lock.json"), "utf8"));
} catch (e) {
  console.error(`package-lock.json: ${e.message}`);
  process.exit(2);
}
const problems = [];
for (const [key, entry] of Object.entries(lock.packages ?? {})) {
  if (!key.startsWith("node_modules/") || entry.link) continue;
  let version;
  try {
    version = JSON.parse(fs.readFileSync(path.join(root, key, "package.json"), "utf8")).version;
  } catch {
    if (!entry.optional) problems.push(`${key} is missing`);
    continue;
  }
  if (version !== entry.version) problems.push(`${key} is ${version}, lock says ${entry.version}`);
}
if (problems.length) {
  console.error(`node_modules differs from package-lock.json (${problems.length}): ${problems.slice(0, 5).join("; ")}`);
  process.exit(1);
}
