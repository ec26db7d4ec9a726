#!/usr/bin/env node
// Entry point of `npx study ...`: runs the TypeScript CLI through tsx's loader (no build step).
"use strict";
const path = require("node:path");
const { register } = require("tsx/cjs/api");
register();
require(path.join(__dirname, "..", "src", "cli", "study.ts"));
