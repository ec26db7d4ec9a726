// Preloaded into the tslab kernel (kernels/tslab-study/kernel.sh). tslab drives TypeScript's watch
// compiler with one pending rebuild timer and throws "Unexpected pending rebuildTimer", failing the
// next cell, when TypeScript asks for a second: module resolution's watchers (directories, and
// package.json files) ask for one of their own, e.g. when a package is installed, or a hard-linked
// second checkout is made, during a long cell. They are turned off here. A source file's change
// only reschedules the program's update (one timer), so its watcher stays: an edited src/ file is
// still seen by the next cell; a package installed while the kernel runs needs a kernel restart.
"use strict";
const ts = require("@tslab/typescript-for-tslab");

const none = { close() {} };
const SOURCE = /\.(d\.)?([cm]?[jt]sx?|json)$/;
const watchFile = ts.sys.watchFile;
ts.sys.watchDirectory = () => none;
ts.sys.watchFile = (file, ...rest) => (SOURCE.test(file) && !/(^|[\\/])package\.json$/.test(file) ? watchFile.call(ts.sys, file, ...rest) : none);
