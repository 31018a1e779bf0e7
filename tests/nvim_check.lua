-- Run inside `nvim --headless`: attach lossmap to the current buffer, wait for its
-- diagnostics and semantic tokens on the line $LOSSMAP_BUG_LINE (0-based), write what was
-- found as JSON to $LOSSMAP_RESULT, and quit.
local repo = os.getenv('LOSSMAP_REPO')
local bug_line = tonumber(os.getenv('LOSSMAP_BUG_LINE'))
local out_path = os.getenv('LOSSMAP_RESULT')
vim.opt.runtimepath:prepend(repo .. '/editors/nvim')
vim.cmd('runtime plugin/lossmap.lua')
vim.lsp.config('lossmap', {
  cmd = { os.getenv('LOSSMAP_PYTHON'), '-m', 'lossmap', 'serve' },
  init_options = { model = 'default', device = 'cpu', debounceMs = 50 },
})
vim.lsp.enable('lossmap')

local result = { diagnostics = {}, tokens = {}, attached = false, highlight = nil }
local function collect(bufnr)
  result.diagnostics = {}
  for _, d in ipairs(vim.diagnostic.get(bufnr, { lnum = bug_line })) do
    table.insert(result.diagnostics, { source = d.source, message = d.message, col = d.col })
  end
  result.tokens = {}
  local line = vim.api.nvim_buf_get_lines(bufnr, bug_line, bug_line + 1, false)[1] or ''
  for col = 0, #line - 1 do
    for _, tok in ipairs(vim.lsp.semantic_tokens.get_at_pos(bufnr, bug_line, col) or {}) do
      table.insert(result.tokens, { type = tok.type, col = tok.start_col, end_col = tok.end_col })
    end
  end
  return #result.diagnostics > 0 and #result.tokens > 0
end

vim.cmd('edit ' .. vim.fn.fnameescape(os.getenv('LOSSMAP_FILE')))
local bufnr = vim.api.nvim_get_current_buf()
local ok = vim.wait(tonumber(os.getenv('LOSSMAP_TIMEOUT_MS') or '240000'), function()
  result.attached = #vim.lsp.get_clients({ bufnr = bufnr, name = 'lossmap' }) > 0
  return result.attached and collect(bufnr)
end, 100)
result.ok = ok
if #result.tokens > 0 then
  local group = '@lsp.type.' .. result.tokens[1].type
  result.highlight = vim.api.nvim_get_hl(0, { name = group, link = false })
  result.highlight_group = group
end
local f = assert(io.open(out_path, 'w'))
f:write(vim.json.encode(result))
f:close()
vim.cmd('qa!')
