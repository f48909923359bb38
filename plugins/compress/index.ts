// The compress plugin: the `compress` step and the zstd and gzip codecs that undo it.
import { definePlugin } from '../../src/plugin-api.js';
import { compressStep } from './compress-step.js';
import { gzipCodec } from './gzip.js';
import { zstdCodec } from './zstd.js';

// Stream compression (zstd through the stock binary, gzip through node:zlib) and its decoders.
export default definePlugin({
  name: 'compress',
  contract: '2.0',
  steps: [compressStep],
  codecs: [zstdCodec, gzipCodec],
});
