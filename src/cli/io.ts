// Where a command writes: stdout, stderr, and whether a person is watching.
export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  isTTY: boolean;
}
