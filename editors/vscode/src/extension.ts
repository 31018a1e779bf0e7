// Wiring: settings -> server command -> LanguageClient; server notifications -> status bar and
// heat map; commands -> server requests. All analysis happens in `lossmap serve`.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import * as vscode from 'vscode';
import {
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  State,
} from 'vscode-languageclient/node';

import { type ClientHooks, createClient, type LossmapClient } from './client';
import { type CommandTarget, registerCommands } from './commands';
import { HeatMap } from './heatmap';
import {
  type DocumentScores,
  DOCUMENT_SCORES,
  SERVER_MOST_SURPRISING,
  SERVER_RESCORE,
  type SurprisingSpot,
  VISIBLE_RANGES,
  visibleRangesParams,
} from './protocol';
import { activeInterpreter, onInterpreterChange } from './python';
import {
  describeCommand,
  findExecutable,
  type ResolvedCommand,
  resolveServerCommand,
} from './serverCommand';
import {
  affectsServer,
  affectsServerCommand,
  clientSettings,
  SECTION,
  SERVER_KEYS,
  type ServerSettings,
  serverSettings,
} from './settings';
import { Status } from './status';
import type { ServerState } from './statusModel';
import { VisibleRangeReporter } from './visibleRanges';

/** What activate() returns: a small window into the extension for the end-to-end check. */
export interface LossmapApi {
  state(): ServerState;
  /** Decoration ranges per level planned for a document uri (undefined: none yet). */
  heatMapCounts(uri: string): number[] | undefined;
}

function config(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration(SECTION);
}

function currentServerSettings(): ServerSettings {
  const cfg = config();
  return serverSettings(Object.fromEntries(SERVER_KEYS.map((key) => [key, cfg.get(key)])));
}

function sameCommand(a: ResolvedCommand | undefined, b: ResolvedCommand): boolean {
  return !!a && a.command === b.command && a.args.join('\0') === b.args.join('\0');
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, process.platform === 'win32' ? fs.constants.F_OK : fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function reasonOf(err: unknown, stderr: string): string {
  const message = err instanceof Error ? err.message : String(err);
  // The stderr tail says why far more often than the client's own error (e.g. "No module
  // named lossmap" versus "Pending response rejected since connection got disposed").
  const lines = stderr.split('\n').filter((l) => l.trim());
  const last = lines.slice(-3).join(' | ');
  return last ? `${last} (${message})` : message;
}

class Controller implements CommandTarget, vscode.Disposable {
  private current: LossmapClient | undefined;
  private command: ResolvedCommand | undefined;
  private interpreterWatch: vscode.Disposable | undefined;
  /** Start/stop/restart run one after the other. */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly output: vscode.LogOutputChannel,
    private readonly status: Status,
    private readonly heatMap: HeatMap,
    private readonly visible: VisibleRangeReporter,
  ) {}

  private serialized(job: () => Promise<void>): Promise<void> {
    this.queue = this.queue.then(job).catch((err: unknown) => {
      this.output.error(`lossmap: ${String(err)}`);
    });
    return this.queue;
  }

  start(): Promise<void> {
    return this.serialized(() => this.doStart());
  }

  stop(): Promise<void> {
    return this.serialized(() => this.doStop());
  }

  restart(): Promise<void> {
    return this.serialized(async () => {
      await this.doStop();
      await this.doStart();
    });
  }

  private async resolveCommand(): Promise<ResolvedCommand> {
    const settings = clientSettings((key) => config().get(key));
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
    const needInterpreter = settings.serverCommand.length === 0 && !settings.pythonPath;
    const interpreter = needInterpreter
      ? await activeInterpreter(folder, (m) => this.output.warn(m))
      : undefined;
    return resolveServerCommand({
      ...settings,
      interpreter,
      platform: process.platform,
      home: os.homedir(),
      workspaceFolder: folder?.fsPath,
    });
  }

  private hooks(): ClientHooks {
    return {
      settings: currentServerSettings,
      progress: (value) => this.status.progress(value),
      serverError: (message) => this.status.serverError(message),
      scoresReady: (params) => {
        const client = this.current?.client;
        if (!client) {
          return;
        }
        const key = client.protocol2CodeConverter.asUri(params.uri).toString();
        const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === key);
        this.status.scored({
          file: path.basename(doc?.uri.fsPath ?? params.uri),
          seconds: params.seconds,
          at: new Date(),
          partial: params.partial === true,
        });
        if (doc) {
          void this.heatMap.update(doc, params.version);
        }
      },
      twoSidedReady: () => {
        // Two-sided confirmation changes diagnostics (refreshed by the server), not the
        // per-token scores the heat map shows.
      },
    };
  }

  private async doStart(): Promise<void> {
    const command = await this.resolveCommand();
    this.command = command;
    await this.watchInterpreter(command);
    const described = describeCommand(command);
    // A missing program would only give the client's "couldn't create connection" error;
    // saying which program and which setting it came from is more use.
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const program = path.isAbsolute(command.command)
      ? command.command
      : /[\\/]/.test(command.command)
        ? path.resolve(folder ?? process.cwd(), command.command)
        : command.command;
    const env = { PATH: process.env.PATH, PATHEXT: process.env.PATHEXT };
    if (!findExecutable(program, env, process.platform, isExecutable)) {
      this.failedToStart(described, `${command.command} not found`);
      return;
    }
    this.output.info(`starting ${described}`);
    this.status.starting(described);
    const lc = createClient({ ...command, command: program }, this.output, this.hooks());
    this.current = lc;
    const source = (doc: vscode.TextDocument) =>
      lc.client.sendRequest<DocumentScores | null>(DOCUMENT_SCORES, {
        textDocument: { uri: lc.client.code2ProtocolConverter.asUri(doc.uri) },
        // The heat map tints only tokens at level 1 or above: the rest need not be sent.
        minLevel: 1,
      });
    // Also follows the client's own restarts after a crash (Running -> Stopped -> Running).
    lc.client.onDidChangeState((e) => {
      if (this.current !== lc) {
        return;
      }
      if (e.newState === State.Running) {
        lc.markRunning();
        this.heatMap.setSource(source);
        void this.heatMap.refreshVisible();
        this.visible.setReport((doc, lines) => {
          const uri = lc.client.code2ProtocolConverter.asUri(doc.uri);
          // Stopping races with scrolling: a notification that cannot be sent is dropped.
          lc.client
            .sendNotification(VISIBLE_RANGES, visibleRangesParams(uri, lines))
            .catch(() => undefined);
        });
      } else if (e.newState === State.Stopped || e.newState === State.StartFailed) {
        this.heatMap.setSource(undefined);
        this.visible.setReport(undefined);
        if (this.status.current.kind !== 'failed') {
          this.status.stopped(reasonOf('exited', lc.stderrTail()));
        }
      }
    });
    try {
      await lc.client.start();
    } catch (err) {
      this.failedToStart(described, reasonOf(err, lc.stderrTail()));
    }
  }

  private failedToStart(described: string, reason: string): void {
    this.output.error(`the server did not start with ${described}: ${reason}`);
    this.status.stopped(reason);
    void vscode.window
      .showErrorMessage(
        `lossmap: the server did not start with ${described}: ${reason}. Point lossmap.serverCommand or lossmap.pythonPath at an environment where lossmap is installed.`,
        'Open Settings',
        'Show Output',
      )
      .then((pick) => {
        if (pick === 'Open Settings') {
          void vscode.commands.executeCommand('workbench.action.openSettings', 'lossmap.');
        } else if (pick === 'Show Output') {
          this.output.show(true);
        }
      });
  }

  private async doStop(): Promise<void> {
    const lc = this.current;
    this.current = undefined;
    this.heatMap.setSource(undefined);
    this.visible.setReport(undefined);
    if (!lc) {
      return;
    }
    try {
      if (lc.client.state === State.Running || lc.client.state === State.Starting) {
        await lc.client.stop(3000);
      }
    } catch (err) {
      this.output.warn(`stopping the server: ${String(err)}`);
    }
    await lc.client.dispose().catch(() => undefined);
    this.status.stopped();
  }

  /** With the Python extension's interpreter in use, picking another one restarts the server. */
  private async watchInterpreter(command: ResolvedCommand): Promise<void> {
    if (command.source !== 'pythonExtension' || this.interpreterWatch) {
      return;
    }
    this.interpreterWatch = await onInterpreterChange(() => void this.restartIfCommandChanged());
  }

  async restartIfCommandChanged(): Promise<void> {
    const next = await this.resolveCommand();
    if (!sameCommand(this.command, next)) {
      void vscode.window.showInformationMessage(
        `lossmap: restarting the server with ${describeCommand(next)}`,
      );
      await this.restart();
    }
  }

  configurationChanged(e: vscode.ConfigurationChangeEvent): void {
    const affects = (section: string) => e.affectsConfiguration(section);
    if (affectsServerCommand(affects)) {
      void this.restartIfCommandChanged();
      return; // the new server gets the current settings at initialize
    }
    if (e.affectsConfiguration(`${SECTION}.heatMap.enabled`)) {
      const enabled = clientSettings((key) => config().get(key)).heatMapEnabled;
      this.status.setHeatMap(enabled);
      this.heatMap.setEnabled(enabled);
    }
    const client = this.running();
    if (client && affectsServer(affects)) {
      if (
        e.affectsConfiguration(`${SECTION}.model`) ||
        e.affectsConfiguration(`${SECTION}.device`) ||
        e.affectsConfiguration(`${SECTION}.runtime`)
      ) {
        this.status.reloadRequested();
      }
      void client.sendNotification(DidChangeConfigurationNotification.type, {
        settings: { [SECTION]: currentServerSettings() },
      });
      if (e.affectsConfiguration(`${SECTION}.displayThreshold`)) {
        // The server recomputes levels from stored scores without sending scoresReady.
        const threshold = config().get<unknown>('displayThreshold');
        void this.heatMap.refreshVisible(typeof threshold === 'number' ? threshold : undefined);
      }
    }
  }

  private running() {
    const client = this.current?.client;
    return client && client.state === State.Running ? client : undefined;
  }

  private runningOrSay() {
    const client = this.running();
    if (!client) {
      void vscode.window
        .showWarningMessage('lossmap: the server is not running.', 'Restart Server')
        .then((pick) => pick && this.restart());
    }
    return client;
  }

  async toggleHeatMap(): Promise<void> {
    const cfg = config();
    const inspect = cfg.inspect<boolean>('heatMap.enabled');
    // Flip the value where it is set, so a workspace setting does not mask the user's toggle.
    const target =
      inspect?.workspaceFolderValue !== undefined
        ? vscode.ConfigurationTarget.WorkspaceFolder
        : inspect?.workspaceValue !== undefined
          ? vscode.ConfigurationTarget.Workspace
          : vscode.ConfigurationTarget.Global;
    await cfg.update('heatMap.enabled', !this.heatMap.isEnabled, target);
  }

  async rescore(doc: vscode.TextDocument): Promise<void> {
    const client = this.runningOrSay();
    if (!client) {
      return;
    }
    vscode.window.setStatusBarMessage(`lossmap: re-scoring ${path.basename(doc.uri.fsPath)}`, 2000);
    await client.sendRequest(ExecuteCommandRequest.type, {
      command: SERVER_RESCORE,
      arguments: [client.code2ProtocolConverter.asUri(doc.uri)],
    });
  }

  async mostSurprising(doc: vscode.TextDocument, n: number): Promise<SurprisingSpot[] | undefined> {
    const client = this.runningOrSay();
    if (!client) {
      return undefined;
    }
    const spots: unknown = await client.sendRequest(ExecuteCommandRequest.type, {
      command: SERVER_MOST_SURPRISING,
      arguments: [client.code2ProtocolConverter.asUri(doc.uri), n],
    });
    return Array.isArray(spots) ? (spots as SurprisingSpot[]) : [];
  }

  showOutput(): void {
    this.output.show(true);
  }

  dispose(): void {
    this.interpreterWatch?.dispose();
  }
}

let controller: Controller | undefined;

export function activate(context: vscode.ExtensionContext): LossmapApi {
  const output = vscode.window.createOutputChannel('lossmap', { log: true });
  const status = new Status();
  const enabled = clientSettings((key) => config().get(key)).heatMapEnabled;
  status.setHeatMap(enabled);
  const heatMap = new HeatMap(enabled, (m) => output.warn(m));
  const visible = new VisibleRangeReporter();
  controller = new Controller(output, status, heatMap, visible);
  const c = controller;
  context.subscriptions.push(
    output,
    status,
    heatMap,
    visible,
    c,
    ...registerCommands(c),
    vscode.workspace.onDidChangeConfiguration((e) => c.configurationChanged(e)),
  );
  void c.start();
  return {
    state: () => status.current,
    heatMapCounts: (uri) => heatMap.planned(uri),
  };
}

export function deactivate(): Promise<void> | undefined {
  return controller?.stop();
}
