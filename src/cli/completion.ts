// Shell completion: `dbflow completion bash|zsh|fish` prints a script; the script asks `dbflow __complete` for candidates.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Argument, Command, Option } from 'commander';
import { ExitCode, UsageError } from '../errors.js';
import { STEP_LISTS } from '../spec/pipeline.js';
import type { Io } from './io.js';

const COMPLETE = '__complete';

/** A command's module, except under `dbflow __complete` (a Tab in the shell): that needs only the program's shape, and fast. */
export async function commandModule<T>(load: () => Promise<T>): Promise<T> {
  return process.argv[2] === COMPLETE ? ({} as T) : load();
}

/** Adds `completion <shell>` and the hidden `__complete` to the program. */
export function registerCompletion(p: Command, io: Io, setCode: (code: number) => void): void {
  p.command('completion')
    .description('print the shell completion script for bash, zsh or fish (--help says how to install it)')
    .argument('<shell>', 'bash, zsh or fish')
    .addHelpText('after', INSTALL)
    .action((shell: string) => {
      const script = SCRIPTS.get(shell);
      if (script === undefined) throw new UsageError(`shell must be "bash", "zsh" or "fish", not "${shell}".`);
      io.out(script);
      setCode(ExitCode.ok);
    });
  p.command(COMPLETE, { hidden: true })
    .description('print the candidates for the last word of a command line, one per line (the completion scripts call it)')
    .argument('[words...]', 'the words after "dbflow", the last one being completed; put "--" before them')
    .option('--quoted', 'the words are as typed in bash, quotes and backslashes included; the candidates come escaped for bash')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .action(async (words: string[], o: { quoted?: boolean }) => {
      // A Tab must never print an error into the user's command line: any failure offers nothing.
      const found = await completionCandidates(p, o.quoted ? words.map(unquoted) : words).catch(() => []);
      const shown = o.quoted ? found.map((c) => bashEscaped(c, words.at(-1) ?? '')) : found;
      if (shown.length > 0) io.out(shown.join('\n'));
      setCode(ExitCode.ok);
    });
}

const INSTALL = `
Install it (then open a new shell):
  bash  add to ~/.bashrc:  source <(dbflow completion bash)
  zsh   dbflow completion zsh > "\${fpath[1]}/_dbflow"
        (or add to ~/.zshrc, after compinit:  source <(dbflow completion zsh))
  fish  dbflow completion fish > ~/.config/fish/completions/dbflow.fish`;

/** What a value on the command line is for: the names that say what it holds, its description and declared choices. */
interface Slot {
  names: string[];
  description: string;
  choices?: readonly string[] | undefined;
}

/** A value already on the line, with what it is for (a step id looks for the pipeline named before it). */
interface Given {
  slot: Slot;
  value: string;
}

/** The candidates for the last of `words` (the words after `dbflow`), from the program's commands, options and arguments. */
export async function completionCandidates(program: Command, words: readonly string[]): Promise<string[]> {
  const current = words.at(-1) ?? '';
  let cmd = program;
  let parent = program;
  let pending: Slot | undefined;
  let positionals = 0;
  let operandsOnly = false;
  const given: Given[] = [];
  const used = new Set<Option>();
  for (const word of words.slice(0, -1)) {
    if (pending) {
      given.push({ slot: pending, value: word });
      pending = undefined;
    } else if (!operandsOnly && word === '--') {
      operandsOnly = true;
    } else if (!operandsOnly && word.startsWith('-') && word !== '-') {
      const [flag, inline] = splitFlag(cmd, word);
      const option = findOption(cmd, flag);
      if (!option) continue;
      used.add(option);
      const slot = optionSlot(option);
      if (slot && inline !== undefined) given.push({ slot, value: inline });
      else if (slot && option.required) pending = slot;
    } else {
      const sub = positionals === 0 ? findCommand(cmd, word) : undefined;
      if (sub) {
        [parent, cmd] = [cmd, sub];
        used.clear();
        continue;
      }
      const arg = argumentAt(cmd, positionals++);
      if (arg) given.push({ slot: argumentSlot(arg), value: word });
    }
  }
  if (pending) return values(pending, current, parent, given);
  if (!operandsOnly && current.startsWith('-')) {
    const inline = /^(--[^=]+)=(.*)$/s.exec(current);
    const option = inline ? findOption(cmd, inline[1]!) : undefined;
    const slot = option ? optionSlot(option) : undefined;
    if (inline && slot) return (await values(slot, inline[2]!, parent, given)).map((v) => `${inline[1]}=${v}`);
    const help = cmd.createHelp();
    const flags = help.visibleOptions(cmd).flatMap((o) => (used.has(o) && !o.variadic ? [] : [o.long, o.short]));
    return matching(flags, current);
  }
  if (positionals === 0 && cmd.commands.length > 0) return matching(commandNames(cmd), current);
  const arg = argumentAt(cmd, positionals);
  return arg ? values(argumentSlot(arg), current, parent, given) : [];
}

/** `--name=value` → [`--name`, `value`]; `-n5` → [`-n`, `5`] when `-n` takes a value; else [word]. */
function splitFlag(cmd: Command, word: string): [string, string | undefined] {
  const eq = word.indexOf('=');
  if (word.startsWith('--') && eq > 0) return [word.slice(0, eq), word.slice(eq + 1)];
  if (!word.startsWith('--') && word.length > 2 && findOption(cmd, word.slice(0, 2))?.required) return [word.slice(0, 2), word.slice(2)];
  return [word, undefined];
}

/** The option of `cmd` (or of a command above it) spelled `flag`, help and version included. */
function findOption(cmd: Command, flag: string): Option | undefined {
  for (let c: Command | null = cmd; c; c = c.parent) {
    const found = [...c.options, ...c.createHelp().visibleOptions(c)].find((o) => o.long === flag || o.short === flag);
    if (found) return found;
  }
  return undefined;
}

/** The subcommand of `cmd` named (or aliased) `name`, hidden ones and `help` included. */
function findCommand(cmd: Command, name: string): Command | undefined {
  return [...cmd.commands, ...cmd.createHelp().visibleCommands(cmd)].find((c) => c.name() === name || c.aliases().includes(name));
}

/** The names (and aliases) of the subcommands `--help` lists; commander's `help` only at the top (`dbflow help run`), so `backups` completes to `list`. */
function commandNames(cmd: Command): string[] {
  return cmd
    .createHelp()
    .visibleCommands(cmd)
    .filter((c) => cmd.commands.includes(c) || !cmd.parent)
    .flatMap((c) => [c.name(), ...c.aliases()]);
}

/** The argument the `index`th positional word fills; a variadic last argument takes all the rest. */
function argumentAt(cmd: Command, index: number): Argument | undefined {
  const args = cmd.registeredArguments;
  const last = args.at(-1);
  return args[index] ?? (last?.variadic ? last : undefined);
}

function argumentSlot(arg: Argument): Slot {
  return { names: [arg.name()], description: arg.description, choices: arg.argChoices };
}

/** What an option's value is for, from its value name (`<file>`) and its long name (`--pipeline`); none for a flag. */
function optionSlot(option: Option): Slot | undefined {
  const valueName = /[<[]([^>\]]+?)(?:\.\.\.)?[>\]]/.exec(option.flags)?.[1];
  if (valueName === undefined || option.negate) return undefined;
  return { names: [valueName, option.long?.replace(/^--/, '') ?? ''], description: option.description, choices: option.argChoices };
}

/** The candidates for a value: its choices (declared, or a description such as "mermaid or dot"), else by what its names say it holds. */
async function values(slot: Slot, current: string, parent: Command, given: Given[]): Promise<string[]> {
  const choices = slot.choices ?? choicesIn(slot.description);
  if (choices) return matching(choices, current);
  const is = (re: RegExp): boolean => slot.names.some((n) => re.test(n.toLowerCase()));
  if (is(/^pipelines?$/)) return paths(current, (name) => /\.ya?ml$/i.test(name));
  if (is(/^steps?$/)) return matching(await stepIds(given), current);
  if (is(/^(dir|folder|repo)s?$|-dir$/)) return paths(current, () => false);
  if (is(/^(file|path|backup)s?$|-file$/)) return paths(current, () => true);
  if (is(/^command$/)) return matching(commandNames(parent), current);
  return [];
}

/** The words of a description that is only a list of them: "mermaid or dot", "bash, zsh or fish". */
function choicesIn(description: string): string[] | undefined {
  return /^[\w-]+(?:, [\w-]+)*,? or [\w-]+$/.test(description) ? description.split(/,? or |, /) : undefined;
}

function matching(names: readonly (string | undefined)[], current: string): string[] {
  return names.filter((n): n is string => n !== undefined && n.startsWith(current));
}

/** The entries of the folder typed so far whose names go on with what is typed: folders (with a `/`) and the files `wanted` keeps. */
function paths(current: string, wanted: (name: string) => boolean): string[] {
  const typedDir = current.slice(0, current.lastIndexOf('/') + 1);
  const start = current.slice(typedDir.length);
  const dir = typedDir === '' ? '.' : typedDir.replace(/^~(?=\/)/, os.homedir());
  const found = start === '..' ? ['../'] : [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    // Hidden entries only when a `.` is typed; a name with a line break cannot be one line of the answer.
    if (!entry.name.startsWith(start) || (entry.name.startsWith('.') && !start.startsWith('.')) || entry.name.includes('\n')) continue;
    const isDir =
      entry.isDirectory() || (entry.isSymbolicLink() && statSync(path.join(dir, entry.name), { throwIfNoEntry: false })?.isDirectory());
    if (isDir) found.push(`${typedDir}${entry.name}/`);
    else if (wanted(entry.name)) found.push(`${typedDir}${entry.name}`);
  }
  return found.sort();
}

/** A word as bash has it in COMP_WORDS, without its quotes and backslashes (nothing is expanded; an open quote is closed). */
function unquoted(word: string): string {
  let out = '';
  let quote = '';
  for (let i = 0; i < word.length; i++) {
    const c = word[i]!;
    if (quote === "'") {
      if (c === "'") quote = '';
      else out += c;
    } else if (c === '\\' && i + 1 < word.length && (quote === '' || '"\\$`'.includes(word[i + 1]!))) out += word[++i]!;
    else if (c === '"' || (c === "'" && quote === '')) quote = quote === c ? '' : c;
    else out += c;
  }
  return out;
}

/**
 * A candidate as bash reads it back, for a word typed as `typed`: a backslash before each character bash gives a meaning
 * to (a leading `~/` kept), or, after an opening quote, quoted the same way and closed unless it is a folder.
 */
function bashEscaped(candidate: string, typed: string): string {
  const close = candidate.endsWith('/') ? '' : typed[0];
  if (typed.startsWith("'")) return `${candidate.replaceAll("'", `'\\''`)}${close}`;
  if (typed.startsWith('"')) return `${candidate.replace(/[$`"\\]/g, '\\$&')}${close}`;
  const escaped = candidate.replace(/[^\w/.,:@%+=~-]/gu, '\\$&');
  return escaped.startsWith('~') && !escaped.startsWith('~/') ? `\\${escaped}` : escaped;
}

/** The step ids of the last pipeline file named on the line; none when it cannot be read or parsed. */
async function stepIds(given: Given[]): Promise<string[]> {
  const file = given
    .filter((g) => g.slot.names.some((n) => /^pipelines?$/i.test(n)))
    .map((g) => g.value.replace(/^~(?=\/)/, os.homedir()))
    .findLast((f) => statSync(f, { throwIfNoEntry: false })?.isFile());
  if (file === undefined) return [];
  const { parseDocument } = await import('yaml');
  const doc: unknown = parseDocument(readFileSync(file, 'utf8')).toJS();
  const ids = new Set<string>();
  for (const list of STEP_LISTS) {
    const steps = doc instanceof Object ? (doc as Record<string, unknown>)[list] : undefined;
    if (!Array.isArray(steps)) continue;
    for (const step of steps)
      if (step instanceof Object && typeof (step as { id?: unknown }).id === 'string') ids.add((step as { id: string }).id);
  }
  return [...ids];
}

// The scripts hand the words typed so far to `dbflow __complete` as separate arguments (never through eval), run the
// dbflow the line names (the one on PATH for a plain `dbflow`), and add no space after a folder. bash gives the words
// as typed, quotes and all: `--quoted` has dbflow unquote them and escape the candidates for bash to insert.
const BASH = `# bash completion for dbflow. Load it from ~/.bashrc with: source <(dbflow completion bash)
_dbflow() {
  local prog=\${COMP_WORDS[0]} line
  [[ $prog == "~/"* ]] && prog=$HOME/\${prog#"~/"}
  local -a words=("\${COMP_WORDS[@]:1:COMP_CWORD-1}" "\${COMP_WORDS[COMP_CWORD]}")
  COMPREPLY=()
  while IFS= read -r line; do
    COMPREPLY+=("$line")
    [[ $line == */ ]] && compopt -o nospace 2>/dev/null
  done < <(command "$prog" __complete --quoted -- "\${words[@]}" 2>/dev/null)
  return 0
}
complete -F _dbflow dbflow`;

const ZSH = `#compdef dbflow
# zsh completion for dbflow. Put it on $fpath as _dbflow: dbflow completion zsh > "\${fpath[1]}/_dbflow"
# or load it from ~/.zshrc, after compinit, with: source <(dbflow completion zsh)
_dbflow() {
  local prog=\${(Q)words[1]} line ret=1
  local -a found dirs others
  found=("\${(@f)$(command "\${prog/#\\~/$HOME}" __complete -- "\${(@Q)words[2,CURRENT-1]}" "\${(Q)PREFIX}" 2>/dev/null)}")
  for line in "\${found[@]}"; do
    if [[ $line == */ ]]; then dirs+=("$line"); elif [[ -n $line ]]; then others+=("$line"); fi
  done
  (( $#others )) && compadd -- "\${others[@]}" && ret=0
  (( $#dirs )) && compadd -S '' -- "\${dirs[@]}" && ret=0
  return ret
}

if [[ $funcstack[1] == _dbflow ]]; then
  _dbflow "$@"
elif (( $+functions[compdef] )); then
  compdef _dbflow dbflow
else
  print -u2 'dbflow: load the zsh completion after compinit (autoload -Uz compinit && compinit)'
fi`;

const FISH = `# fish completion for dbflow. Install it with: dbflow completion fish > ~/.config/fish/completions/dbflow.fish
function __dbflow_complete
    set -l tokens (commandline -opc)
    set -l prog (string replace -r '^~/' "$HOME/" -- $tokens[1])
    command $prog __complete -- $tokens[2..-1] (commandline -ct | string unescape) 2>/dev/null
end
complete -c dbflow -f -a '(__dbflow_complete)'`;

const SCRIPTS = new Map([
  ['bash', BASH],
  ['zsh', ZSH],
  ['fish', FISH],
]);
