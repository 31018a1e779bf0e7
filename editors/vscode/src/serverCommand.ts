// Which process to start as the language server. Pure: the Python extension is asked in
// python.ts, and its answer comes in as `interpreter`.

export type CommandSource = 'serverCommand' | 'pythonPath' | 'pythonExtension' | 'default';

export interface CommandInputs {
  /** lossmap.serverCommand: the whole command line, program first. */
  serverCommand: string[];
  /** lossmap.pythonPath */
  pythonPath: string;
  /** The Python extension's active interpreter for the workspace, when it is installed. */
  interpreter?: string;
  platform: string;
  home?: string;
  workspaceFolder?: string;
}

export interface ResolvedCommand {
  command: string;
  args: string[];
  source: CommandSource;
}

/** Expand a leading `~` and `${workspaceFolder}`, the two things users type in such paths. */
export function expand(arg: string, home?: string, workspaceFolder?: string): string {
  let out = arg;
  if (home && (out === '~' || out.startsWith('~/') || out.startsWith('~\\'))) {
    out = home + out.slice(1);
  }
  if (workspaceFolder) {
    out = out.split('${workspaceFolder}').join(workspaceFolder);
  }
  return out;
}

const MODULE_ARGS = ['-m', 'lossmap', 'serve'];

/** serverCommand, else `<python> -m lossmap serve` with pythonPath, the Python extension's
 * interpreter, or python3 (`python` on Windows, where python3 is often the Store stub).
 * vscode-languageclient appends `--stdio` (TransportKind.stdio); the server accepts it. */
export function resolveServerCommand(inputs: CommandInputs): ResolvedCommand {
  const x = (a: string) => expand(a, inputs.home, inputs.workspaceFolder);
  const given = inputs.serverCommand.map((a) => a.trim()).filter((a) => a.length > 0);
  if (given.length > 0) {
    return { command: x(given[0]), args: given.slice(1).map(x), source: 'serverCommand' };
  }
  if (inputs.pythonPath) {
    return { command: x(inputs.pythonPath), args: [...MODULE_ARGS], source: 'pythonPath' };
  }
  if (inputs.interpreter) {
    return { command: inputs.interpreter, args: [...MODULE_ARGS], source: 'pythonExtension' };
  }
  const python = inputs.platform === 'win32' ? 'python' : 'python3';
  return { command: python, args: [...MODULE_ARGS], source: 'default' };
}

/** One line for messages and the status tooltip: `python3 -m lossmap serve (default)`. */
export function describeCommand(c: ResolvedCommand): string {
  const quote = (a: string) => (/\s/.test(a) ? JSON.stringify(a) : a);
  const where: Record<CommandSource, string> = {
    serverCommand: 'lossmap.serverCommand',
    pythonPath: 'lossmap.pythonPath',
    pythonExtension: "the Python extension's interpreter",
    default: 'default',
  };
  return `${[c.command, ...c.args].map(quote).join(' ')} (${where[c.source]})`;
}

/** Where `command` would be found, like the shell does: a path is checked as it is, a bare
 * name on PATH (with PATHEXT on Windows). `exists` is injected for the tests. */
export function findExecutable(
  command: string,
  env: { PATH?: string; PATHEXT?: string },
  platform: string,
  exists: (file: string) => boolean,
): string | undefined {
  const windows = platform === 'win32';
  const sep = windows ? ';' : ':';
  const exts = windows ? ['', ...(env.PATHEXT ?? '.EXE;.CMD;.BAT;.COM').split(';')] : [''];
  const hasDir = command.includes('/') || (windows && command.includes('\\'));
  const dirs = hasDir ? [''] : (env.PATH ?? '').split(sep).filter((d) => d.length > 0);
  for (const dir of dirs) {
    for (const ext of exts) {
      const file = dir ? `${dir}${windows ? '\\' : '/'}${command}${ext}` : `${command}${ext}`;
      if (exists(file)) {
        return file;
      }
    }
  }
  return undefined;
}
