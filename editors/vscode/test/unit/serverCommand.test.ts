import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  describeCommand,
  expand,
  findExecutable,
  resolveServerCommand,
} from '../../src/serverCommand';

const base = { serverCommand: [], pythonPath: '', platform: 'linux', home: '/home/u' };

describe('resolveServerCommand', () => {
  it('prefers lossmap.serverCommand, expanded', () => {
    const c = resolveServerCommand({
      ...base,
      serverCommand: ['~/venv/bin/lossmap', 'serve', '--x=${workspaceFolder}'],
      pythonPath: '/ignored/python',
      interpreter: '/ignored/too',
      workspaceFolder: '/w',
    });
    assert.deepEqual(c, {
      command: '/home/u/venv/bin/lossmap',
      args: ['serve', '--x=/w'],
      source: 'serverCommand',
    });
  });

  it('then lossmap.pythonPath, then the Python extension, then python3', () => {
    assert.deepEqual(
      resolveServerCommand({ ...base, pythonPath: '/p/python', interpreter: '/i' }),
      {
        command: '/p/python',
        args: ['-m', 'lossmap', 'serve'],
        source: 'pythonPath',
      },
    );
    assert.equal(
      resolveServerCommand({ ...base, interpreter: '/env/bin/python' }).command,
      '/env/bin/python',
    );
    assert.equal(
      resolveServerCommand({ ...base, interpreter: '/env/bin/python' }).source,
      'pythonExtension',
    );
    assert.equal(resolveServerCommand(base).command, 'python3');
    assert.equal(resolveServerCommand({ ...base, platform: 'win32' }).command, 'python');
  });

  it('ignores blank entries of serverCommand', () => {
    assert.equal(resolveServerCommand({ ...base, serverCommand: ['  ', ''] }).source, 'default');
  });
});

describe('expand / describeCommand', () => {
  it('expands only a leading ~', () => {
    assert.equal(expand('~', '/h'), '/h');
    assert.equal(expand('a~b', '/h'), 'a~b');
    assert.equal(expand('~/x', undefined), '~/x');
  });

  it('says where the command came from', () => {
    const c = resolveServerCommand({ ...base, pythonPath: '/my env/python' });
    assert.equal(describeCommand(c), '"/my env/python" -m lossmap serve (lossmap.pythonPath)');
  });
});

describe('findExecutable', () => {
  const files = new Set(['/usr/bin/python3', '/venv/bin/lossmap', 'C:\\Py\\python.EXE']);
  const exists = (f: string) => files.has(f);

  it('looks a bare name up on PATH', () => {
    assert.equal(
      findExecutable('python3', { PATH: '/nope:/usr/bin' }, 'linux', exists),
      '/usr/bin/python3',
    );
    assert.equal(findExecutable('python9', { PATH: '/usr/bin' }, 'linux', exists), undefined);
    assert.equal(findExecutable('python3', {}, 'linux', exists), undefined);
  });

  it('checks a path as it is', () => {
    assert.equal(
      findExecutable('/venv/bin/lossmap', { PATH: '' }, 'linux', exists),
      '/venv/bin/lossmap',
    );
    assert.equal(
      findExecutable('/venv/bin/python', { PATH: '/venv/bin' }, 'linux', exists),
      undefined,
    );
  });

  it('tries PATHEXT on Windows', () => {
    assert.equal(
      findExecutable(
        'python',
        { PATH: 'C:\\Windows;C:\\Py', PATHEXT: '.COM;.EXE' },
        'win32',
        exists,
      ),
      'C:\\Py\\python.EXE',
    );
  });
});
