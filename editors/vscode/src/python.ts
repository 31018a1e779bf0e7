// The Python extension's active interpreter, through its public API (@vscode/python-extension),
// when that extension is installed. Without it, serverCommand.ts falls back to python3.

import { PythonExtension } from '@vscode/python-extension';
import * as vscode from 'vscode';

const PYTHON_EXTENSION_ID = 'ms-python.python';
// The Python extension can take a while to activate; the server should not wait forever.
const API_TIMEOUT_MS = 15_000;

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

async function pythonApi(): Promise<PythonExtension | undefined> {
  if (!vscode.extensions.getExtension(PYTHON_EXTENSION_ID)) {
    return undefined;
  }
  return withTimeout(PythonExtension.api(), API_TIMEOUT_MS);
}

/** Path of the active interpreter for `resource`'s workspace folder, if the Python extension
 * is installed and knows one. Never throws: a broken Python extension must not stop lossmap. */
export async function activeInterpreter(
  resource: vscode.Uri | undefined,
  log: (message: string) => void,
): Promise<string | undefined> {
  try {
    const api = await pythonApi();
    if (!api) {
      return undefined;
    }
    const active = api.environments.getActiveEnvironmentPath(resource);
    const env = await api.environments.resolveEnvironment(active);
    return env?.executable.uri?.fsPath ?? active.path;
  } catch (err) {
    log(`could not ask the Python extension for its interpreter: ${String(err)}`);
    return undefined;
  }
}

/** Calls `listener` when the user picks another interpreter; undefined without the extension. */
export async function onInterpreterChange(
  listener: () => void,
): Promise<vscode.Disposable | undefined> {
  try {
    const api = await pythonApi();
    return api?.environments.onDidChangeActiveEnvironmentPath(() => listener());
  } catch {
    return undefined;
  }
}
