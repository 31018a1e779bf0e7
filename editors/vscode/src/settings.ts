// VS Code settings <-> what the server is told.
// The `lossmap` configuration section holds the server's settings and a few client-only ones
// (serverCommand, pythonPath, heatMap.enabled, trace.server). The server reports every key it
// does not know as a warning, so only its own keys are ever sent: in initializationOptions, in
// answers to workspace/configuration and in didChangeConfiguration.

/** The server's keys (lossmap/server/config.py `_CAMEL`); a test keeps the two in step. */
export const SERVER_KEYS = [
  'model',
  'judge',
  'judgeIdleSeconds',
  'device',
  'runtime',
  'displayThreshold',
  'diagnosticThreshold',
  'unconfirmedExtraBits',
  'confirmedExtraBits',
  'maxDiagnostics',
  'diagnosticSeverity',
  'diagnosticsInErrorRegions',
  'debounceMs',
  'maxFileBytes',
  'languages',
  'topK',
  'confirmLines',
  'confirmAroundEdit',
  'confirmCandidates',
  'cacheBudgetMb',
] as const;

export type ServerKey = (typeof SERVER_KEYS)[number];
export type ServerSettings = Partial<Record<ServerKey, unknown>>;

export const SECTION = 'lossmap';

/** Settings that only the client reads; changing one of these restarts the server. */
export const RESTART_KEYS = ['serverCommand', 'pythonPath'] as const;

/** The server's part of a `lossmap` section (as `workspace.getConfiguration('lossmap')` or a
 * JSON copy of it gives): its own keys only, without unset values. Values are passed on as
 * they are: the server validates them and says what is wrong. */
export function serverSettings(section: unknown): ServerSettings {
  const out: ServerSettings = {};
  if (section === null || typeof section !== 'object') {
    return out;
  }
  const source = section as Record<string, unknown>;
  for (const key of SERVER_KEYS) {
    const value = source[key];
    if (value !== undefined && value !== null) {
      out[key] = value;
    }
  }
  return out;
}

/** Does a configuration change touch what the server sees? `affects` is
 * `ConfigurationChangeEvent.affectsConfiguration`. */
export function affectsServer(affects: (section: string) => boolean): boolean {
  return SERVER_KEYS.some((key) => affects(`${SECTION}.${key}`));
}

/** Does a configuration change touch how the server is started? */
export function affectsServerCommand(affects: (section: string) => boolean): boolean {
  return RESTART_KEYS.some((key) => affects(`${SECTION}.${key}`));
}

/** The answer to a workspace/configuration request with the client's own answer `result`:
 * items asking for the `lossmap` section get the server's keys only. */
export function translateConfigurationResult(
  items: ReadonlyArray<{ section?: string | null }>,
  result: unknown[],
): unknown[] {
  return result.map((value, i) => (items[i]?.section === SECTION ? serverSettings(value) : value));
}

/** The client-only settings, with defaults for missing or ill-typed values. */
export interface ClientSettings {
  serverCommand: string[];
  pythonPath: string;
  heatMapEnabled: boolean;
}

export function clientSettings(get: (key: string) => unknown): ClientSettings {
  const command = get('serverCommand');
  const python = get('pythonPath');
  const heat = get('heatMap.enabled');
  return {
    serverCommand: Array.isArray(command)
      ? command.filter((a): a is string => typeof a === 'string')
      : typeof command === 'string' && command.trim()
        ? command.trim().split(/\s+/) // tolerated: a plain string, split on whitespace
        : [],
    pythonPath: typeof python === 'string' ? python.trim() : '',
    heatMapEnabled: typeof heat === 'boolean' ? heat : true,
  };
}
