// Output to a reader that went away (`dbflow runs | head -3`): later lines are dropped, quietly.

/** Watches `stream` for a closed pipe, once; returns a writer that drops text once the reader is gone. */
export function pipeWriter(stream: NodeJS.WriteStream): (text: string) => void {
  let closed = false;
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
    // The command goes on (a run still finishes, cleans up and records itself); only its output has nowhere to go.
    closed = true;
  });
  return (text) => {
    if (!closed && !stream.destroyed) stream.write(text);
  };
}
