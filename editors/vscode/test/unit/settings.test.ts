import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';

import {
  affectsServer,
  affectsServerCommand,
  clientSettings,
  SERVER_KEYS,
  serverSettings,
  translateConfigurationResult,
} from '../../src/settings';
import { EXTENSION_DIR, packageJson } from './helpers';

// What `workspace.getConfiguration('lossmap')` holds: server keys next to client-only ones.
const SECTION = {
  serverCommand: ['/venv/bin/lossmap', 'serve'],
  pythonPath: '/usr/bin/python3',
  heatMap: { enabled: true },
  trace: { server: 'off' },
  model: 'default',
  judge: 'default-large',
  judgeIdleSeconds: 900,
  device: 'cpu',
  runtime: 'auto',
  displayThreshold: 10,
  diagnosticThreshold: 10,
  unconfirmedExtraBits: 8,
  confirmedExtraBits: 4,
  maxDiagnostics: 10,
  diagnosticSeverity: 'warning',
  diagnosticsInErrorRegions: false,
  debounceMs: 300,
  maxFileBytes: 1000000,
  languages: ['python'],
  topK: 5,
  confirmLines: 0,
  confirmAroundEdit: 1,
  confirmCandidates: true,
  cacheBudgetMb: 512,
};

describe('serverSettings', () => {
  it("keeps the server's keys and drops the client-only ones", () => {
    const out = serverSettings(SECTION);
    assert.deepEqual(Object.keys(out).sort(), [...SERVER_KEYS].sort());
    for (const key of ['serverCommand', 'pythonPath', 'heatMap', 'trace']) {
      assert.ok(!(key in out), key);
    }
    assert.equal(out.displayThreshold, 10);
    assert.deepEqual(out.languages, ['python']);
    assert.equal(out.diagnosticSeverity, 'warning');
  });

  it('leaves out unset values and passes bad ones on for the server to report', () => {
    assert.deepEqual(serverSettings({ model: undefined, topK: null, debounceMs: -5 }), {
      debounceMs: -5,
    });
  });

  it('accepts anything', () => {
    assert.deepEqual(serverSettings(null), {});
    assert.deepEqual(serverSettings('lossmap'), {});
    assert.deepEqual(serverSettings(undefined), {});
  });
});

describe('translateConfigurationResult', () => {
  it('translates only the items that ask for the lossmap section', () => {
    const out = translateConfigurationResult(
      [{ section: 'lossmap' }, { section: 'editor' }, {}],
      [SECTION, { tabSize: 4 }, null],
    );
    assert.deepEqual(out[0], serverSettings(SECTION));
    assert.deepEqual(out[1], { tabSize: 4 });
    assert.equal(out[2], null);
  });
});

describe('which changes matter', () => {
  const changed =
    (...sections: string[]) =>
    (s: string) =>
      sections.includes(s);

  it('sends server settings only when a server key changed', () => {
    assert.ok(affectsServer(changed('lossmap.displayThreshold')));
    assert.ok(!affectsServer(changed('lossmap.heatMap.enabled')));
    assert.ok(!affectsServer(changed('lossmap.serverCommand')));
    assert.ok(!affectsServer(changed('editor.fontSize')));
  });

  it('restarts the server when the command changed', () => {
    assert.ok(affectsServerCommand(changed('lossmap.pythonPath')));
    assert.ok(affectsServerCommand(changed('lossmap.serverCommand')));
    assert.ok(!affectsServerCommand(changed('lossmap.model')));
  });
});

describe('clientSettings', () => {
  it('reads the client-only settings with defaults', () => {
    const values: Record<string, unknown> = { 'heatMap.enabled': false, pythonPath: ' /p/python ' };
    assert.deepEqual(
      clientSettings((k) => values[k]),
      {
        serverCommand: [],
        pythonPath: '/p/python',
        heatMapEnabled: false,
      },
    );
    assert.deepEqual(
      clientSettings(() => undefined),
      {
        serverCommand: [],
        pythonPath: '',
        heatMapEnabled: true,
      },
    );
  });

  it('tolerates a serverCommand written as one string', () => {
    const s = clientSettings((k) => (k === 'serverCommand' ? ' lossmap  serve ' : undefined));
    assert.deepEqual(s.serverCommand, ['lossmap', 'serve']);
  });
});

describe('the settings mirror the server', () => {
  it('package.json contributes a lossmap.<key> setting for every server key', () => {
    const props = packageJson().contributes.configuration.properties as Record<string, unknown>;
    for (const key of SERVER_KEYS) {
      assert.ok(`lossmap.${key}` in props, key);
    }
  });

  it('SERVER_KEYS are the keys of lossmap/server/config.py', (t) => {
    const config = path.resolve(EXTENSION_DIR, '../../lossmap/server/config.py');
    if (!fs.existsSync(config)) {
      t.skip('lossmap/server/config.py is not next to this checkout');
      return;
    }
    const source = fs.readFileSync(config, 'utf8');
    const block = /_CAMEL = \{([\s\S]*?)\n\}/.exec(source);
    assert.ok(block, '_CAMEL not found in config.py');
    const keys = [...block[1].matchAll(/^\s*"(\w+)":/gm)].map((m) => m[1]);
    assert.deepEqual([...SERVER_KEYS].sort(), keys.sort());
  });
});
