// Shell completion: the scripts `dbflow completion` prints load in bash, zsh and fish and complete subcommands, options,
// choices and pipeline files; `dbflow __complete` answers from the program itself, fast and without ever failing loudly.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { Command } from 'commander';
import { execa } from 'execa';
import { completionCandidates } from '../../src/cli/completion.js';
import { dbflow, dbflowNodeArgs, hasStackTrace, mapLimit, repoRoot } from '../helpers/cli.js';
import { requireTool } from '../helpers/step-context.js';
import { tmpDir } from '../helpers/tmp.js';

/** A word for a POSIX shell (and zsh, fish), single-quoted. */
const sh = (word: string): string => `'${word.replaceAll("'", `'\\''`)}'`;

/** Fails (CI=true) or skips the test when `shell` is missing, naming the package to install. */
const requireShell = (t: TestContext, shell: string): Promise<boolean> => requireTool(t, shell, shell);

interface Shelf {
  root: string;
  /** The folder the examples complete in: a.yaml, b.yml, c.txt and sub/, which holds pipelines whose names need quoting. */
  cwd: string;
  env: Record<string, string>;
  /** The script `dbflow completion <shell>` printed, saved in a file. */
  script: (shell: 'bash' | 'zsh' | 'fish') => Promise<string>;
  /** The arguments of each call of the `dbflow` on PATH, as `<word>`s, a line a call. */
  calls: () => string[];
}

/** A scratch home with a `dbflow` on PATH that runs the CLI from source (logging its arguments), and files to complete. */
function shelf(t: TestContext): Shelf {
  const root = tmpDir(t, 'dbflow-completion-');
  const [bin, cwd, log] = [path.join(root, 'bin'), path.join(root, 'work'), path.join(root, 'calls')];
  mkdirSync(bin);
  mkdirSync(path.join(cwd, 'sub'), { recursive: true });
  for (const f of ['a.yaml', 'b.yml', 'c.txt', 'sub/my pipe.yaml', "sub/it's $x.yaml"]) writeFileSync(path.join(cwd, f), '');
  const command = [process.execPath, ...dbflowNodeArgs([])].map(sh).join(' ');
  writeFileSync(path.join(bin, 'dbflow'), `#!/bin/sh\nprintf '<%s>' "$@" >> ${sh(log)}; echo >> ${sh(log)}\nexec ${command} "$@"\n`);
  chmodSync(path.join(bin, 'dbflow'), 0o755);
  return {
    root,
    cwd,
    env: { PATH: `${bin}:${process.env.PATH ?? ''}`, HOME: root, TERM: 'xterm', NO_COLOR: '1', CI: 'true' },
    script: async (shell) => {
      const file = path.join(root, `dbflow.${shell}`);
      if (!existsSync(file)) writeFileSync(file, (await dbflow(['completion', shell])).stdout);
      return file;
    },
    calls: () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : []),
  };
}

/**
 * Types each line and a Tab into an interactive `shell` (driven through zsh's zsh/zpty) after `setup`, then Ctrl-X
 * Ctrl-D, which `setup` binds to write the line as the Tab left it (`buffer:…`) into `out`; `out`'s lines.
 */
async function typeTabs(s: Shelf, shell: string, setup: string, out: string, lines: string[]): Promise<string[]> {
  const driver = [
    'zmodload zsh/zpty || exit 3',
    `zpty -b sh ${sh(shell)}`,
    `zpty -w sh ${sh(setup)}`,
    // The prompt after the setup line: the line editor reads keys now (typed before, the terminal could eat ^D).
    "zpty -r sh _ '*READY> *'",
    ...lines.map((l) => `zpty -w -n sh ${sh(l)}$'\\t\\x18\\x04'`),
    `for i in {1..1200}; do (( $(grep -c '^buffer:' ${sh(out)} 2>/dev/null) >= ${lines.length} )) && break; sleep 0.1; done`,
    'zpty -d sh',
  ].join('\n');
  const r = await execa('zsh', ['-f', '-c', driver], { cwd: s.cwd, env: s.env, extendEnv: false, reject: false, timeout: 180_000 });
  const recorded = existsSync(out) ? readFileSync(out, 'utf8').split('\n') : [];
  assert.equal(r.exitCode, 0, `zsh driving ${shell}: ${r.stderr}\n${recorded.join('\n')}`);
  assert.equal(recorded.filter((l) => l.startsWith('buffer:')).length, lines.length, `every line was completed:\n${recorded.join('\n')}`);
  return recorded;
}

/** The prompt typeTabs waits for, written so that the echo of the setup line does not match it. */
const READY = "PS1=RE''ADY'> '";

describe('dbflow completion <shell>', () => {
  it('prints a script for bash, zsh and fish that the shell parses', async (t) => {
    const dir = tmpDir(t);
    for (const shell of ['bash', 'zsh', 'fish']) {
      const r = await dbflow(['completion', shell]);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.stderr, '');
      assert.match(r.stdout, /__complete/);
      if (!(await requireShell(t, shell))) return;
      writeFileSync(path.join(dir, shell), r.stdout);
      const check = await execa(shell, ['-n', path.join(dir, shell)], { reject: false });
      assert.equal(check.exitCode, 0, `${shell} -n: ${check.stderr}`);
    }
  });

  it('refuses another shell with a usage error', async () => {
    const r = await dbflow(['completion', 'tcsh']);
    assert.equal(r.exitCode, 2);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, 'dbflow: shell must be "bash", "zsh" or "fish", not "tcsh".\n');
  });

  it('says in --help how to install it in each shell; __complete is not listed', async () => {
    const [help, all] = await Promise.all([dbflow(['completion', '--help']), dbflow(['--help'])]);
    assert.equal(help.exitCode, 0);
    for (const line of [
      'source <(dbflow completion bash)',
      'dbflow completion zsh > "${fpath[1]}/_dbflow"',
      'dbflow completion fish > ~/.config/fish/completions/dbflow.fish',
    ]) {
      assert.ok(help.stdout.includes(line), `completion --help shows ${line}`);
    }
    assert.match(all.stdout, /^ {2}completion\b/m);
    assert.doesNotMatch(all.stdout, /__complete/);
  });
});

describe('dbflow __complete', () => {
  /** What `dbflow __complete <args>` prints, a candidate a line; it must exit 0 and print nothing on stderr. */
  async function complete(args: string[], cwd?: string): Promise<string[]> {
    const r = await dbflow(['__complete', ...args], { cwd });
    assert.deepEqual({ args, exitCode: r.exitCode, stderr: r.stderr }, { args, exitCode: 0, stderr: '' });
    return r.stdout.split('\n').filter(Boolean);
  }

  it('offers subcommands, options, choices and the shells, from the program', async () => {
    const cases: [string[], string[]][] = [
      [['ru'], ['run', 'runs']],
      [['backups', ''], ['list']],
      [
        ['graph', 'x.yaml', '--format', ''],
        ['mermaid', 'dot'],
      ],
      [['graph', 'x.yaml', '--format=d'], ['--format=dot']],
      [
        ['graph', 'x.yaml', '-'],
        ['--format', '-f', '--help', '-h'],
      ],
      [
        ['completion', ''],
        ['bash', 'zsh', 'fish'],
      ],
      [['help', 'backu'], ['backups']],
      [
        ['runs', '--json', '--'],
        ['--limit', '--queue', '--state-dir', '--help'],
      ],
    ];
    const found = await mapLimit(cases, 4, ([words]) => complete(['--', ...words]));
    assert.deepEqual(
      found,
      cases.map(([, expected]) => expected),
    );
  });

  it('offers pipeline files and folders under the path typed; with --quoted, escaped for bash', async (t) => {
    const s = shelf(t);
    const cases: [string[], string[]][] = [
      [
        ['--', 'run', ''],
        ['a.yaml', 'b.yml', 'sub/'],
      ],
      [
        ['--', 'validate', 'a.yaml', 'sub/'],
        ["sub/it's $x.yaml", 'sub/my pipe.yaml'],
      ],
      [['--', 'daemon', ''], ['sub/']],
      [
        ['--quoted', '--', 'run', 'sub/'],
        ["sub/it\\'s\\ \\$x.yaml", 'sub/my\\ pipe.yaml'],
      ],
      [['--quoted', '--', 'run', 'sub/my\\ p'], ['sub/my\\ pipe.yaml']],
      // After an opening quote bash inserts the rest as it is: quoted the same way, and closed.
      [['--quoted', '--', 'run', "'sub/my"], ["sub/my pipe.yaml'"]],
      [['--quoted', '--', 'run', '"sub/it'], ['sub/it\'s \\$x.yaml"']],
      [['--quoted', '--', 'run', "'s"], ['sub/']],
    ];
    const found = await mapLimit(cases, 4, ([args]) => complete(args, s.cwd));
    assert.deepEqual(
      found,
      cases.map(([, expected]) => expected),
    );
  });

  it('prints nothing and exits 0 when it cannot answer', async (t) => {
    const s = shelf(t);
    const cases = [
      ['run', 'no/such/folder/'],
      ['nosuchcommand', ''],
      ['run', 'a.yaml', 'extra', ''],
      ['run', '--lock-wait', ''],
    ];
    for (const words of cases) {
      const r = await dbflow(['__complete', '--', ...words], { cwd: s.cwd });
      assert.deepEqual({ words, exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr }, { words, exitCode: 0, stdout: '', stderr: '' });
      assert.equal(hasStackTrace(r.stderr), false);
    }
  });

  it('loads no command module, plugin or driver (every Tab runs it)', async (t) => {
    const s = shelf(t);
    const loaded = path.join(s.root, 'loaded');
    const hooks = `import { appendFileSync } from 'node:fs'; export async function load(url, context, next) { appendFileSync(${JSON.stringify(loaded)}, url + '\\n'); return next(url, context); }`;
    const register = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});`;
    const r = await execa(
      process.execPath,
      ['--import', `data:text/javascript,${encodeURIComponent(register)}`, ...dbflowNodeArgs(['__complete', '--', 'ru'])],
      { cwd: s.cwd, reject: false },
    );
    assert.equal(r.stdout, 'run\nruns', r.stderr);
    const files = readFileSync(loaded, 'utf8')
      .split('\n')
      .filter((u) => u.startsWith('file:'))
      .map((u) =>
        path
          .relative(repoRoot, new URL(u).pathname)
          .replace(/^dist\//, '')
          .replace(/\.js$/, '.ts'),
      );
    const heavy = files.filter(
      (f) => /^(src\/(engine|plugins|repo|ops|plan|schema|ui)\/|plugins\/)/.test(f) && f !== 'src/engine/versions.ts',
    );
    const packages = [...new Set(files.filter((f) => f.startsWith('node_modules/')).map((f) => f.split('/')[1]))].filter(
      (p) => p !== 'commander',
    );
    assert.deepEqual(
      { heavy, packages },
      { heavy: [], packages: [] },
      'dbflow __complete loaded these: import the commands in main.ts through commandModule() (completion.ts), so that a Tab stays fast',
    );
  });
});

describe('completion candidates from a program', () => {
  const PIPELINE = [
    'version: 1',
    'steps:',
    '  - id: dump',
    '  - id: upload',
    'finally:',
    '  - id: notify',
    'on_failure:',
    '  - { id: page }',
    '',
  ].join('\n');

  function program(): Command {
    const p = new Command('dbflow');
    p.command('run').argument('<pipeline>').option('--only <step>', 'run only this step').option('-f, --format <format>', 'mermaid or dot');
    p.command('pick').argument('<pipeline>').argument('[steps...]');
    return p;
  }

  it('completes the step ids of the pipeline named earlier on the line, for a value named <step>', async (t) => {
    const file = path.join(tmpDir(t), 'p.yaml');
    writeFileSync(file, PIPELINE);
    assert.deepEqual(await completionCandidates(program(), ['run', file, '--only', '']), ['dump', 'upload', 'notify', 'page']);
    assert.deepEqual(await completionCandidates(program(), ['run', file, '--only=u']), ['--only=upload']);
    assert.deepEqual(await completionCandidates(program(), ['pick', file, 'dump', 'u']), ['upload']);
    assert.deepEqual(await completionCandidates(program(), ['run', '--only', '']), [], 'no pipeline named yet');
  });

  it('tolerates a broken or missing pipeline file', async (t) => {
    const dir = tmpDir(t);
    const broken = path.join(dir, 'broken.yaml');
    writeFileSync(broken, 'steps:\n  - id: dump\n  - id: [unclosed\n  - id: verify\n');
    const ids = await completionCandidates(program(), ['run', broken, '--only', '']);
    assert.ok(ids.includes('dump'), `the readable ids of a broken file: ${ids.join(', ')}`);
    writeFileSync(broken, ': : :\n\t- [');
    assert.deepEqual(await completionCandidates(program(), ['run', broken, '--only', '']), []);
    assert.deepEqual(await completionCandidates(program(), ['run', path.join(dir, 'missing.yaml'), '--only', '']), []);
  });

  it('takes choices from a description that lists them, and reads a short option with its value attached', async () => {
    assert.deepEqual(await completionCandidates(program(), ['run', 'x.yaml', '-f', '']), ['mermaid', 'dot']);
    assert.deepEqual(
      await completionCandidates(program(), ['run', '-fdot', '--']),
      ['--only', '--help'],
      'an option given is not offered again',
    );
  });
});

describe('in bash', () => {
  /** Calls `_dbflow` as bash's programmable completion does, `words` being the words as typed (quotes included). */
  async function complete(s: Shelf, words: string[]): Promise<{ replies: string[]; nospace: boolean; registered: string }> {
    const line = words.join(' ');
    const script = [
      `source ${sh(await s.script('bash'))} || exit 3`,
      'registered=$(complete -p dbflow)',
      'compopt() { [[ $* == *nospace* ]] && nospace=1; }',
      `COMP_WORDS=(${words.map(sh).join(' ')}) COMP_CWORD=${words.length - 1} COMP_LINE=${sh(line)} COMP_POINT=${line.length}`,
      `_dbflow dbflow ${sh(words.at(-1)!)} ${sh(words.at(-2)!)}`,
      'printf "%s\\n" "$registered" "nospace=${nospace:-0}" "${COMPREPLY[@]}"',
    ].join('\n');
    const r = await execa('bash', ['--norc', '--noprofile', '-c', script], { cwd: s.cwd, env: s.env, extendEnv: false, reject: false });
    assert.equal(r.exitCode, 0, r.stderr);
    const [registered = '', nospace, ...replies] = r.stdout.split('\n');
    return { replies, nospace: nospace === 'nospace=1', registered };
  }

  it('completes subcommands', async (t) => {
    if (!(await requireShell(t, 'bash'))) return;
    const s = shelf(t);
    assert.deepEqual(await complete(s, ['dbflow', 'ru']), {
      replies: ['run', 'runs'],
      nospace: false,
      registered: 'complete -F _dbflow dbflow',
    });
    assert.deepEqual((await complete(s, ['dbflow', 'backups', ''])).replies, ['list']);
  });

  it('completes pipeline files and folders, with no space after a folder', async (t) => {
    if (!(await requireShell(t, 'bash'))) return;
    const s = shelf(t);
    assert.deepEqual(await complete(s, ['dbflow', 'run', '']), {
      replies: ['a.yaml', 'b.yml', 'sub/'],
      nospace: true,
      registered: 'complete -F _dbflow dbflow',
    });
    assert.deepEqual(await complete(s, ['dbflow', 'run', 'a']), {
      replies: ['a.yaml'],
      nospace: false,
      registered: 'complete -F _dbflow dbflow',
    });
  });

  it("completes a command's options and an option's choices", async (t) => {
    if (!(await requireShell(t, 'bash'))) return;
    const s = shelf(t);
    const options = (await complete(s, ['dbflow', 'run', '--'])).replies;
    for (const o of ['--concurrency', '--json', '--verbose', '--lock-wait', '--state-dir', '--help'])
      assert.ok(options.includes(o), `run --<TAB> offers ${o}: ${options.join(' ')}`);
    assert.ok(!options.includes('--format'), "only run's own options");
    assert.deepEqual((await complete(s, ['dbflow', 'graph', 'x.yaml', '--format', ''])).replies, ['mermaid', 'dot']);
  });

  it('hands over words with spaces, quotes and $ as typed, running nothing of them', async (t) => {
    if (!(await requireShell(t, 'bash'))) return;
    const s = shelf(t);
    assert.deepEqual((await complete(s, ['dbflow', 'run', 'sub/my\\ p'])).replies, ['sub/my\\ pipe.yaml']);
    assert.deepEqual((await complete(s, ['dbflow', 'run', "sub/it\\'s\\ \\$"])).replies, ["sub/it\\'s\\ \\$x.yaml"]);
    assert.deepEqual((await complete(s, ['dbflow', 'validate', '"$(touch pwned)"', '`touch pwned`', 'a'])).replies, ['a.yaml']);
    assert.equal(existsSync(path.join(s.cwd, 'pwned')), false, 'nothing typed on the line was run');
    assert.ok(s.calls().includes('<__complete><--quoted><--><validate><"$(touch pwned)"><`touch pwned`><a>'), s.calls().join('\n'));
  });

  it('completes at an interactive prompt: the Tab leaves the line as a user wants it', async (t) => {
    if (!(await requireShell(t, 'bash')) || !(await requireShell(t, 'zsh'))) return;
    const s = shelf(t);
    const out = path.join(s.root, 'bash-lines');
    const dump = `dump() { printf 'buffer:%s\\n' "$READLINE_LINE" >> ${sh(out)}; READLINE_LINE=; }`;
    const setup = `${READY}; unset HISTFILE; source ${sh(await s.script('bash'))}; ${dump}; bind -x '"\\C-x\\C-d": dump'`;
    const lines = [
      'dbflow backups l',
      'dbflow run su',
      'dbflow run sub/my',
      "dbflow run 'sub/my",
      'dbflow run "sub/it',
      'dbflow graph x.yaml --format m',
    ];
    const recorded = await typeTabs(s, 'bash --norc --noprofile -i', setup, out, lines);
    assert.deepEqual(
      recorded.filter((l) => l.startsWith('buffer:')).map((l) => l.slice('buffer:'.length)),
      [
        'dbflow backups list ',
        'dbflow run sub/',
        'dbflow run sub/my\\ pipe.yaml ',
        "dbflow run 'sub/my pipe.yaml' ",
        'dbflow run "sub/it\'s \\$x.yaml" ',
        'dbflow graph x.yaml --format mermaid ',
      ],
    );
  });
});

describe('in zsh', () => {
  /** Types each line and a Tab at an interactive zsh that loaded the completion; what _dbflow gave compadd, and the line after. */
  async function complete(
    s: Shelf,
    load: 'source' | 'fpath',
    lines: string[],
  ): Promise<{ registered: string; offered: string[][]; buffers: string[] }> {
    const out = path.join(s.root, `zsh-${load}`);
    const fpath = path.join(s.root, 'fpath');
    if (load === 'fpath') {
      mkdirSync(fpath, { recursive: true });
      writeFileSync(path.join(fpath, '_dbflow'), readFileSync(await s.script('zsh')));
    }
    const setup = [
      READY,
      ...(load === 'fpath' ? [`fpath=(${sh(fpath)} $fpath)`] : []),
      `autoload -Uz compinit && compinit -u -d ${sh(path.join(s.root, `zcompdump-${load}`))}`,
      ...(load === 'source' ? [`source ${sh(await s.script('zsh'))}`] : []),
      `print -r -- "registered:$_comps[dbflow]" >> ${sh(out)}`,
      'bindkey -e',
      `dump() { print -r -- "buffer:$BUFFER" >> ${sh(out)}; BUFFER=; }`,
      'zle -N dump',
      "bindkey '^X^D' dump",
      // What _dbflow offers: compadd's arguments, recorded before the real compadd gets them.
      `compadd() { print -rn -- offered: >> ${sh(out)}; printf '<%s>' "$@" >> ${sh(out)}; print >> ${sh(out)}; builtin compadd "$@"; }`,
    ].join('; ');
    const recorded = await typeTabs(s, 'zsh -f -i', setup, out, lines);
    const offered: string[][] = [[]];
    const buffers: string[] = [];
    for (const l of recorded) {
      if (l.startsWith('offered:')) offered.at(-1)!.push(...(l.split('<-->')[1] ?? '').slice(1, -1).split('><'));
      if (l.startsWith('buffer:')) {
        buffers.push(l.slice('buffer:'.length));
        offered.push([]);
      }
    }
    return {
      registered: recorded.find((l) => l.startsWith('registered:'))?.slice('registered:'.length) ?? '',
      offered: offered.slice(0, -1),
      buffers,
    };
  }

  it('loads when sourced after compinit and completes subcommands, options, choices and pipeline files', async (t) => {
    if (!(await requireShell(t, 'zsh'))) return;
    const s = shelf(t);
    const lines = [
      'dbflow ru',
      'dbflow backups ',
      'dbflow run ',
      'dbflow run s',
      'dbflow run --c',
      'dbflow graph x.yaml --format ',
      'dbflow run sub/my\\ p',
      "dbflow run 'sub/it",
    ];
    const r = await complete(s, 'source', lines);
    assert.equal(r.registered, '_dbflow');
    assert.deepEqual(r.offered, [
      ['run', 'runs'],
      ['list'],
      ['a.yaml', 'b.yml', 'sub/'],
      ['sub/'],
      ['--concurrency'],
      ['mermaid', 'dot'],
      ['sub/my pipe.yaml'],
      ["sub/it's $x.yaml"],
    ]);
    assert.deepEqual(r.buffers, [
      'dbflow run',
      'dbflow backups list ',
      'dbflow run ',
      'dbflow run sub/',
      'dbflow run --concurrency ',
      'dbflow graph x.yaml --format ',
      'dbflow run sub/my\\ pipe.yaml ',
      "dbflow run 'sub/it'\\''s $x.yaml' ",
    ]);
    assert.ok(s.calls().includes('<__complete><--><run><sub/it>'), `zsh hands over the word without its quotes:\n${s.calls().join('\n')}`);
  });

  it('loads from a folder on $fpath', async (t) => {
    if (!(await requireShell(t, 'zsh'))) return;
    const s = shelf(t);
    const r = await complete(s, 'fpath', ['dbflow ru', 'dbflow run s']);
    assert.equal(r.registered, '_dbflow');
    assert.deepEqual(r.offered, [['run', 'runs'], ['sub/']]);
    assert.deepEqual(r.buffers, ['dbflow run', 'dbflow run sub/']);
  });
});

describe('in fish', () => {
  it('completes subcommands, choices and pipeline files', async (t) => {
    if (!(await requireShell(t, 'fish'))) return;
    const s = shelf(t);
    const script = await s.script('fish');
    const fish = async (line: string): Promise<string[]> => {
      const r = await execa('fish', ['--no-config', '-c', `source ${sh(script)}; complete -C ${sh(line)}`], {
        cwd: s.cwd,
        env: s.env,
        extendEnv: false,
        reject: false,
      });
      assert.equal(r.exitCode, 0, r.stderr);
      return r.stdout.split('\n').filter(Boolean).sort();
    };
    assert.deepEqual(await fish('dbflow ru'), ['run', 'runs']);
    assert.deepEqual(await fish('dbflow run '), ['a.yaml', 'b.yml', 'sub/']);
    assert.deepEqual(await fish('dbflow graph x.yaml --format '), ['dot', 'mermaid']);
    assert.deepEqual(await fish('dbflow run sub/my\\ p'), ['sub/my pipe.yaml']);
  });
});
