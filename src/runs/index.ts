// The run store and its tables.
export * from "./store";
export * from "./tables";
export { writeFileAtomic, writeJsonAtomic, writeChunksAtomic } from "./atomic";
export * from "./frames";
