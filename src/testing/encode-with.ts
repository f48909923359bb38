// An encoder for the codec suite made from the transform step that writes the codec's layer.
import { finished } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { ArtifactLayer, StepDefinition } from '../plugins/types.js';
import type { Encoded } from './codec-suite.js';
import { testContext } from './context.js';

/**
 * `encode` for `describeCodec`: runs the transform `step` with `withValue` on the input, in a test
 * context, and takes the layer from its `outputs.layer` (as `upload` records it). The context is
 * disposed once the encoded stream has ended or failed.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a step's outputs may be any object
export function encodeWith<W>(step: StepDefinition<W, any>, withValue: W): (input: Readable) => Promise<Encoded> {
  return async (input) => {
    const { ctx, dispose } = testContext<W>({ with: withValue, input, id: step.uses });
    let result;
    try {
      result = await step.run(ctx);
    } catch (err) {
      dispose();
      throw err;
    }
    const layer = (result.outputs as { layer?: ArtifactLayer } | undefined)?.layer;
    if (!result.output || !layer) {
      dispose();
      throw new Error(
        `dbflow/testing: step "${step.uses}" returned no output stream or no outputs.layer; a codec's step must output both.`,
      );
    }
    finished(result.output).then(dispose, dispose);
    return { stream: result.output, layer };
  };
}
