// The run store and its tables.
export * from "./store";
export * from "./tables";
export { writeFileAtomic, writeJsonAtomic, writeChunksAtomic } from "../ground/atomic";
export * from "./frames";
