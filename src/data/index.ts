// Data: datasets in their official formats, the decode cache, transforms and the seeded loader.
export * from "./dataset";
export * from "./datasets";
export * from "./transforms";
export * from "./pipeline";
export { openCache, buildCache, cacheIndex } from "./cache";
export { loadImageFolder, loadFileList, listFolder } from "./imagefolder";
export { loadCifar, readCifarArchive } from "./cifar";
export { loadMnistFiles, parseIdx } from "./mnist";
export { dtdFiles, food101Files, flowers102Files, loadLayout } from "./layouts";
export { ensureFile, verifyFile, download, MissingDataError } from "./download";
export { REGISTRY } from "./registry";
export { readTar, extractTar } from "./tar";
export { readMat } from "./mat";
export { unpickle } from "./pickle";
export { resize, resizeBox } from "./resample";
export { dataDir, mirrorDir } from "./paths";
