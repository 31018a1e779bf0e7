// The status-bar item: model loading (with progress), ready + device + last re-score, failures.
// The state machine and the wording live in statusModel.ts.

import * as vscode from 'vscode';

import {
  type LastRescore,
  type ProgressValue,
  type ServerState,
  StatusMachine,
  statusView,
} from './statusModel';

export class Status implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private readonly machine = new StatusMachine();
  private heatMap = true;

  constructor() {
    this.item = vscode.window.createStatusBarItem(
      'lossmap.status',
      vscode.StatusBarAlignment.Right,
      100,
    );
    this.item.name = 'lossmap';
    this.render();
    this.item.show();
  }

  get current(): ServerState {
    return this.machine.state;
  }

  starting(command: string): void {
    this.machine.starting(command);
    this.render();
  }

  reloadRequested(): void {
    this.machine.reloadRequested();
  }

  stopped(reason?: string): void {
    this.machine.stopped(reason);
    this.render();
  }

  progress(value: ProgressValue): void {
    this.machine.progress(value);
    this.render();
  }

  serverError(message: string): void {
    this.machine.serverError(message);
    this.render();
  }

  scored(last: LastRescore): void {
    this.machine.scored(last);
    this.render();
  }

  setHeatMap(enabled: boolean): void {
    this.heatMap = enabled;
    this.render();
  }

  private render(): void {
    const view = statusView(this.machine.state, this.heatMap);
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.command = view.command;
    this.item.backgroundColor =
      view.tone === 'normal'
        ? undefined
        : new vscode.ThemeColor(
            view.tone === 'error'
              ? 'statusBarItem.errorBackground'
              : 'statusBarItem.warningBackground',
          );
  }

  dispose(): void {
    this.item.dispose();
  }
}
