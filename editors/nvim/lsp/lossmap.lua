-- lossmap language server: where a code model is surprised by your code.
-- Neovim 0.11+ picks this file up from the runtimepath; enable it with
--   vim.lsp.enable('lossmap')
-- and override any field with vim.lsp.config('lossmap', { ... }).
return {
  cmd = { 'lossmap', 'serve' },
  filetypes = {
    'python', 'javascript', 'typescript', 'typescriptreact', 'javascriptreact', 'go', 'rust',
    'c', 'cpp', 'java', 'ruby', 'lua', 'sh', 'php', 'kotlin', 'scala', 'swift', 'cs',
  },
  root_markers = { '.git', 'pyproject.toml', 'package.json', 'Cargo.toml', 'go.mod' },
  -- Settings the server reads at start-up (see the README's server section).
  init_options = {
    model = 'default',
    displayThreshold = 8.0,
    diagnosticThreshold = 10.0,
    maxDiagnostics = 10,
    debounceMs = 300,
  },
}
