// dbflow/testing: the conformance suites a plugin author runs with `node --test`, and what they are built from.
export { describeStorage, type StorageSetup } from './storage-suite.js';
export type { StorageSuiteOptions } from './storage-checks.js';
export { describeCodec, type CodecSetup, type CodecSuiteOptions, type Encoded } from './codec-suite.js';
export { encodeWith } from './encode-with.js';
export { describeDriver, type DriverSetup, type DriverSuiteOptions } from './driver-suite.js';
export { testContext, type TestContext, type TestContextOptions } from './context.js';
export { chunksOf, digest, randomStream, readAll, type RandomStream } from './streams.js';
export type { Setup } from './support.js';
