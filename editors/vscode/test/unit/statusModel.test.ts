import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  afterLoading,
  deviceFromEndMessage,
  StatusMachine,
  statusView,
} from '../../src/statusModel';

describe('status bar', () => {
  it('shows loading with its percentage', () => {
    const v = statusView(
      {
        kind: 'loading',
        title: 'lossmap: loading model default',
        message: 'weights',
        percentage: 42.4,
      },
      true,
    );
    assert.equal(v.text, '$(loading~spin) lossmap: loading 42%');
    assert.match(v.tooltip, /loading model default 42%\nweights/);
  });

  it('reads the device from the end of loading, or a failure', () => {
    assert.equal(deviceFromEndMessage('ready on cuda:0'), 'cuda:0');
    assert.deepEqual(afterLoading('ready on cpu'), { kind: 'ready', device: 'cpu' });
    assert.deepEqual(afterLoading('failed'), { kind: 'failed' });
    assert.deepEqual(afterLoading(undefined), { kind: 'failed' });
  });

  it('shows the device and the last re-score time when ready', () => {
    const at = new Date(2026, 0, 2, 14, 3, 9);
    const v = statusView(
      { kind: 'ready', device: 'cpu', last: { file: 'a.py', seconds: 0.8432, at, partial: true } },
      true,
    );
    assert.equal(v.text, '$(flame) lossmap: cpu · 0.84 s');
    assert.match(v.tooltip, /Last re-score: a\.py in 0\.84 s at 14:03:09 \(around the edit/);
    assert.equal(v.command, 'lossmap.showMostSurprising');
    assert.equal(v.tone, 'normal');
  });

  it('says when the heat map is off', () => {
    assert.match(statusView({ kind: 'ready', device: 'cpu' }, false).text, /\(map off\)$/);
  });

  it('shows failures with their reason, as an error', () => {
    const v = statusView({ kind: 'failed', reason: 'lossmap: no such model' }, true);
    assert.equal(v.tone, 'error');
    assert.match(v.tooltip, /no such model/);
    const s = statusView({ kind: 'stopped', reason: 'No module named lossmap' }, true);
    assert.equal(s.command, 'lossmap.restartServer');
    assert.match(s.tooltip, /No module named lossmap/);
  });
});

describe('StatusMachine', () => {
  const begin = { kind: 'begin' as const, title: 'lossmap: loading model default', percentage: 0 };
  const ready = { kind: 'end' as const, message: 'ready on cpu' };
  const last = { file: 'a.py', seconds: 1, at: new Date(0), partial: false };

  it('follows a normal start: starting, loading with progress, ready, scored', () => {
    const m = new StatusMachine();
    m.starting('python3 -m lossmap serve (default)');
    assert.equal(m.state.kind, 'starting');
    m.progress(begin);
    m.progress({ kind: 'report', message: 'weights', percentage: 50 });
    assert.deepEqual(m.state, {
      kind: 'loading',
      title: begin.title,
      message: 'weights',
      percentage: 50,
    });
    m.progress(ready);
    m.scored(last);
    assert.deepEqual(m.state, { kind: 'ready', device: 'cpu', last });
  });

  it('keeps the reason when the Error follows the failed end', () => {
    const m = new StatusMachine();
    m.starting('x');
    m.progress(begin);
    m.progress({ kind: 'end', message: 'failed' });
    m.serverError('lossmap: no such GGUF file');
    assert.deepEqual(m.state, { kind: 'failed', reason: 'lossmap: no such GGUF file' });
  });

  it('counts an Error before the begin as the failure of that load (the begin that follows is never ended)', () => {
    const m = new StatusMachine();
    m.starting('x');
    m.serverError('lossmap: no such GGUF file');
    m.progress(begin);
    assert.equal(m.state.kind, 'failed');
    assert.equal(m.state.kind === 'failed' && m.state.reason, 'lossmap: no such GGUF file');
  });

  it('does the same for a reload after a settings change, and recovers on the next one', () => {
    const m = new StatusMachine();
    m.starting('x');
    m.progress(begin);
    m.progress(ready);
    m.reloadRequested();
    m.serverError('lossmap: model spec /x.gguf: no such GGUF file');
    m.progress({ ...begin, title: 'lossmap: loading model /x.gguf' });
    assert.equal(m.state.kind, 'failed');
    m.reloadRequested();
    m.progress(begin);
    assert.equal(m.state.kind, 'loading');
    m.progress(ready);
    assert.deepEqual(m.state, { kind: 'ready', device: 'cpu' });
  });

  it('leaves a ready server ready on an Error about a document', () => {
    const m = new StatusMachine();
    m.starting('x');
    m.progress(begin);
    m.progress(ready);
    m.serverError('lossmap: /a.py: scoring failed');
    assert.deepEqual(m.state, { kind: 'ready', device: 'cpu' });
  });

  it('takes scores from a server that sent no progress as ready', () => {
    const m = new StatusMachine();
    m.starting('x');
    m.scored(last);
    assert.deepEqual(m.state, { kind: 'ready', device: '?', last });
    m.stopped('exited');
    assert.deepEqual(m.state, { kind: 'stopped', reason: 'exited' });
  });
});
