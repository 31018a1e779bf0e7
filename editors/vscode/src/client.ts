// The LanguageClient for `lossmap serve`, with the few hooks the extension needs:
// settings translation, loading progress for the status bar, error reasons, custom notifications.

import * as vscode from 'vscode';
import {
  CloseAction,
  type CloseHandlerResult,
  ErrorAction,
  type ErrorHandler,
  type ErrorHandlerResult,
  LanguageClient,
  type LanguageClientOptions,
  MessageType,
  ResponseError,
  type ServerOptions,
  ShowMessageNotification,
  type StaticFeature,
  TransportKind,
  type WorkDoneProgressBegin,
  type WorkDoneProgressEnd,
  type WorkDoneProgressReport,
} from 'vscode-languageclient/node';

import { SCORES_READY, type ScoresReady, TWO_SIDED_READY, type TwoSidedReady } from './protocol';
import type { ResolvedCommand } from './serverCommand';
import { type ServerSettings, translateConfigurationResult } from './settings';

export interface ClientHooks {
  /** The server's settings now (initializationOptions). */
  settings(): ServerSettings;
  progress(value: WorkDoneProgressBegin | WorkDoneProgressReport | WorkDoneProgressEnd): void;
  /** A window/showMessage of type Error (the model failed to load, a document failed...). */
  serverError(message: string): void;
  scoresReady(params: ScoresReady): void;
  twoSidedReady(params: TwoSidedReady): void;
}

const STDERR_LINES = 20;
const MAX_RESTARTS = 3;
const RESTART_WINDOW_MS = 3 * 60_000;

/** Server messages: still notifications, but errors also become the status item's reason and
 * offer the output channel. Registered after the built-in features (registerFeature appends),
 * so its window/showMessage handler replaces the client's default one. */
class LossmapFeature implements StaticFeature {
  constructor(
    private readonly client: LanguageClient,
    private readonly hooks: ClientHooks,
  ) {}

  fillClientCapabilities(): void {
    // Nothing to announce: window/showMessage needs no capability.
  }

  getState() {
    return { kind: 'static' as const };
  }

  initialize(): void {
    this.client.onNotification(ShowMessageNotification.type, ({ type, message }) => {
      switch (type) {
        case MessageType.Error:
          this.hooks.serverError(message);
          void vscode.window.showErrorMessage(message, 'Show Output').then((pick) => {
            if (pick) {
              this.client.outputChannel.show(true);
            }
          });
          break;
        case MessageType.Warning:
          void vscode.window.showWarningMessage(message);
          break;
        default:
          void vscode.window.showInformationMessage(message);
      }
    });
  }

  clear(): void {}
}

/** Restarts a server that crashes after it was up, a few times; a server that never came up
 * (wrong interpreter, lossmap not installed) is not restarted: the reason is in its stderr. */
class Restarts implements ErrorHandler {
  private readonly crashes: number[] = [];
  running = false;

  constructor(private readonly stderr: () => string) {}

  error(): ErrorHandlerResult {
    return { action: ErrorAction.Continue };
  }

  closed(): CloseHandlerResult {
    const tail = this.stderr();
    const why = tail ? `\n${tail}` : '';
    if (!this.running) {
      // handled: the extension reports a failed start itself, with what to change.
      return {
        action: CloseAction.DoNotRestart,
        message: `lossmap: the server exited while starting.${why}`,
        handled: true,
      };
    }
    const now = Date.now();
    this.crashes.push(now);
    while (this.crashes.length && now - this.crashes[0] > RESTART_WINDOW_MS) {
      this.crashes.shift();
    }
    if (this.crashes.length > MAX_RESTARTS) {
      return {
        action: CloseAction.DoNotRestart,
        message: `lossmap: the server stopped ${this.crashes.length} times in 3 minutes; not restarting it (lossmap: Restart Server).${why}`,
      };
    }
    return { action: CloseAction.Restart, handled: true };
  }
}

export interface LossmapClient {
  client: LanguageClient;
  /** The server's last stderr lines, for error messages. */
  stderrTail(): string;
  /** Mark the server as up (initialize answered): later exits count as crashes. */
  markRunning(): void;
}

export function createClient(
  command: ResolvedCommand,
  output: vscode.LogOutputChannel,
  hooks: ClientHooks,
): LossmapClient {
  const tail: string[] = [];
  const stderrTail = () => tail.join('\n');
  const restarts = new Restarts(stderrTail);

  const serverOptions: ServerOptions = {
    command: command.command,
    args: command.args,
    // Appends --stdio, which `lossmap serve` accepts.
    transport: TransportKind.stdio,
  };

  const clientOptions: LanguageClientOptions = {
    // Every text document: the server decides what it scores (lossmap.languages, size limits).
    documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
    outputChannel: output,
    initializationOptions: () => hooks.settings(),
    errorHandler: restarts,
    // A failed initialize is reported by the extension (with the stderr tail), not twice.
    initializationFailedHandler: () => false,
    stdioOptions: {
      stdout: (input, channel) => {
        input.on('data', (data: Buffer) => channel.info(data.toString()));
      },
      stderr: (input, channel) => {
        let partial = '';
        input.on('data', (data: Buffer) => {
          const lines = (partial + data.toString()).split(/\r?\n/);
          partial = lines.pop() ?? '';
          for (const line of lines) {
            channel.error(line);
            tail.push(line);
            if (tail.length > STDERR_LINES) {
              tail.shift();
            }
          }
        });
      },
    },
    middleware: {
      // The model-loading progress goes to the status-bar item (with its percentage) instead
      // of the client's generic status-bar spinner, so it is shown once: `next` is not called.
      handleWorkDoneProgress: (_token, params) => hooks.progress(params),
      workspace: {
        // The server pulls its section; answer with its own keys only.
        configuration: async (params, token, next) => {
          const result = await next(params, token);
          if (result instanceof ResponseError || !Array.isArray(result)) {
            return result;
          }
          return translateConfigurationResult(params.items, result);
        },
        // The server registers for didChangeConfiguration without a section, so the client
        // would notify it of every change to any setting; the extension sends the translated
        // `lossmap` section itself, and only when one of the server's settings changed.
        didChangeConfiguration: async () => {},
      },
    },
  };

  const client = new LanguageClient('lossmap', 'lossmap', serverOptions, clientOptions);
  client.registerFeature(new LossmapFeature(client, hooks));
  client.onNotification(SCORES_READY, (params: ScoresReady) => hooks.scoresReady(params));
  client.onNotification(TWO_SIDED_READY, (params: TwoSidedReady) => hooks.twoSidedReady(params));
  return {
    client,
    stderrTail,
    markRunning: () => {
      restarts.running = true;
    },
  };
}
