// What the status-bar item says, as a pure function of the server's state, so that the wording
// is unit-tested; status.ts only copies the result onto a vscode.StatusBarItem.

export interface LastRescore {
  file: string;
  seconds: number;
  at: Date;
  partial: boolean;
}

export type ServerState =
  | { kind: 'starting'; command: string }
  | { kind: 'loading'; title: string; message?: string; percentage?: number }
  | { kind: 'ready'; device: string; last?: LastRescore }
  | { kind: 'failed'; reason?: string; beforeBegin?: boolean }
  | { kind: 'stopped'; reason?: string };

export interface StatusView {
  text: string;
  tooltip: string;
  /** 'error' and 'warning' pick the status bar's error / warning background. */
  tone: 'normal' | 'warning' | 'error';
  /** What a click does. */
  command: 'lossmap.showMostSurprising' | 'lossmap.showOutput' | 'lossmap.restartServer';
}

/** Device from the model-loading progress' end message: "ready on cpu" -> "cpu". */
export function deviceFromEndMessage(message: string | undefined): string | undefined {
  const m = /^ready on (.+)$/.exec((message ?? '').trim());
  return m ? m[1] : undefined;
}

/** The state after the loading progress ends with `message`. */
export function afterLoading(message: string | undefined): ServerState {
  const device = deviceFromEndMessage(message);
  if (device !== undefined) {
    return { kind: 'ready', device };
  }
  // "failed": the reason follows in a window/showMessage of type Error.
  return { kind: 'failed' };
}

export type ProgressValue =
  | { kind: 'begin'; title: string; message?: string; percentage?: number }
  | { kind: 'report'; message?: string; percentage?: number }
  | { kind: 'end'; message?: string };

/** The server's state from the events the client sees. Model loading is reported with
 * $/progress and its failure with window/showMessage (Error), but the two can arrive out of
 * order: a model that fails at once (a missing file) fails before the server's progress token
 * exists, so the Error comes first and a `begin` that is never ended follows. An Error while a
 * load is expected but has not begun therefore counts as that load's failure, and swallows
 * the late `begin`. */
export class StatusMachine {
  state: ServerState = { kind: 'stopped' };
  /** A model load is due (server starting, or model/device changed) and has not begun. */
  private awaitingLoad = false;

  starting(command: string): void {
    this.state = { kind: 'starting', command };
    this.awaitingLoad = true;
  }

  /** The client sent a new model or device: the server reloads. */
  reloadRequested(): void {
    this.awaitingLoad = true;
  }

  stopped(reason?: string): void {
    this.state = { kind: 'stopped', reason };
    this.awaitingLoad = false;
  }

  progress(value: ProgressValue): void {
    const s = this.state;
    if (value.kind === 'begin') {
      this.awaitingLoad = false;
      if (s.kind === 'failed' && s.beforeBegin) {
        this.state = { ...s, beforeBegin: false }; // the late begin of the load that failed
        return;
      }
      this.state = {
        kind: 'loading',
        title: value.title,
        message: value.message,
        percentage: value.percentage,
      };
    } else if (value.kind === 'report') {
      if (s.kind === 'loading') {
        this.state = {
          ...s,
          message: value.message ?? s.message,
          percentage: value.percentage ?? s.percentage,
        };
      }
    } else {
      this.awaitingLoad = false;
      const next = afterLoading(value.message);
      // An Error that came first keeps its reason.
      this.state =
        next.kind === 'failed' && s.kind === 'failed' ? { ...s, beforeBegin: false } : next;
    }
  }

  /** A window/showMessage of type Error. Errors about documents leave a ready server ready. */
  serverError(message: string): void {
    const s = this.state;
    if (s.kind === 'loading') {
      this.state = { kind: 'failed', reason: message };
    } else if (this.awaitingLoad && (s.kind === 'starting' || s.kind === 'ready')) {
      this.state = { kind: 'failed', reason: message, beforeBegin: true };
      this.awaitingLoad = false;
    } else if (s.kind === 'failed') {
      this.state = { ...s, reason: message };
    }
  }

  /** New scores landed. A server that sent no loading progress is evidently ready too. */
  scored(last: LastRescore): void {
    const s = this.state;
    if (s.kind === 'ready') {
      this.state = { ...s, last };
    } else if (s.kind === 'starting' || s.kind === 'loading') {
      this.state = { kind: 'ready', device: '?', last };
    }
  }
}

function seconds(s: number): string {
  return s < 10 ? `${s.toFixed(2)} s` : `${s.toFixed(1)} s`;
}

function clock(d: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

export function statusView(state: ServerState, heatMapEnabled: boolean): StatusView {
  const off = heatMapEnabled ? '' : ' (map off)';
  switch (state.kind) {
    case 'starting':
      return {
        text: '$(loading~spin) lossmap: starting',
        tooltip: `Starting the lossmap server: ${state.command}`,
        tone: 'normal',
        command: 'lossmap.showOutput',
      };
    case 'loading': {
      const pct = state.percentage === undefined ? '' : ` ${Math.round(state.percentage)}%`;
      const detail = state.message ? `\n${state.message}` : '';
      return {
        text: `$(loading~spin) lossmap: loading${pct}`,
        tooltip: `${state.title}${pct}${detail}`,
        tone: 'normal',
        command: 'lossmap.showOutput',
      };
    }
    case 'ready': {
      const last = state.last;
      const took = last ? ` · ${seconds(last.seconds)}` : '';
      const tooltip = [`lossmap: model ready on ${state.device}`];
      if (last) {
        const partial = last.partial ? ' (around the edit; the rest follows)' : '';
        tooltip.push(
          `Last re-score: ${last.file} in ${seconds(last.seconds)} at ${clock(last.at)}${partial}`,
        );
      } else {
        tooltip.push('No document scored yet');
      }
      tooltip.push(heatMapEnabled ? 'Heat map on' : 'Heat map off (lossmap: Toggle Heat Map)');
      tooltip.push('Click: show the most surprising spots');
      return {
        text: `$(flame) lossmap: ${state.device}${took}${off}`,
        tooltip: tooltip.join('\n'),
        tone: 'normal',
        command: 'lossmap.showMostSurprising',
      };
    }
    case 'failed':
      return {
        text: '$(error) lossmap: failed',
        tooltip: `lossmap: the model did not load${state.reason ? `\n${state.reason}` : ''}\nClick: show the server output`,
        tone: 'error',
        command: 'lossmap.showOutput',
      };
    case 'stopped':
      return {
        text: '$(debug-disconnect) lossmap: stopped',
        tooltip: `lossmap: the server is not running${state.reason ? `\n${state.reason}` : ''}\nClick: restart it`,
        tone: 'warning',
        command: 'lossmap.restartServer',
      };
  }
}
