-- Highlight groups for lossmap's semantic token types, one per surprise level, and a
-- :LossmapSurprising command that lists the most surprising lines in the quickfix list.
if vim.g.loaded_lossmap then
  return
end
vim.g.loaded_lossmap = true

-- Backgrounds readable on dark and light colour schemes; `default` lets a user's own
-- highlight definitions win.
local levels = {
  surpriseLow = { bg = '#5c5a1e', ctermbg = 58 },
  surpriseMedium = { bg = '#7a4a12', ctermbg = 94 },
  surpriseHigh = { bg = '#8a2a22', ctermbg = 88 },
  surpriseSevere = { bg = '#9b1d5c', ctermbg = 125, bold = true },
}

local function set_highlights()
  for name, spec in pairs(levels) do
    vim.api.nvim_set_hl(0, '@lsp.type.' .. name, vim.tbl_extend('force', { default = true }, spec))
  end
  vim.api.nvim_set_hl(0, '@lsp.mod.prose', { default = true, italic = true })
end

set_highlights()
vim.api.nvim_create_autocmd('ColorScheme', { callback = set_highlights })

vim.api.nvim_create_user_command('LossmapSurprising', function(opts)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = vim.lsp.get_clients({ bufnr = bufnr, name = 'lossmap' })[1]
  if not client then
    vim.notify('lossmap is not attached to this buffer', vim.log.levels.WARN)
    return
  end
  local n = tonumber(opts.args) or 10
  client:exec_cmd({
    title = 'most surprising',
    command = 'lossmap.mostSurprising',
    arguments = { vim.uri_from_bufnr(bufnr), n },
  }, { bufnr = bufnr }, function(err, result)
    if err then
      vim.notify('lossmap: ' .. err.message, vim.log.levels.ERROR)
      return
    end
    local items = {}
    for _, spot in ipairs(result or {}) do
      local expected = spot.expected and (' → expected ' .. vim.inspect(spot.expected)) or ''
      table.insert(items, {
        bufnr = bufnr,
        lnum = spot.range.start.line + 1,
        col = spot.range.start.character + 1,
        text = string.format('%.1f bits: %s%s', spot.margin, vim.inspect(spot.token), expected),
      })
    end
    vim.fn.setqflist({}, ' ', { title = 'lossmap: most surprising', items = items })
    vim.cmd('copen')
  end)
end, { nargs = '?', desc = 'lossmap: list the most surprising lines (quickfix)' })

-- Tell the server which lines of a buffer are on screen (lossmap/visibleRanges): the judge
-- confirms the suspicious lines there before the rest of the file's. Scrolling fires often:
-- only the position after a short pause is sent, once per buffer with the ranges of all the
-- windows showing it (the server keeps the last report per document).
local pending = 0
local function report_visible()
  local by_buf = {}
  for _, win in ipairs(vim.api.nvim_tabpage_list_wins(0)) do
    local bufnr = vim.api.nvim_win_get_buf(win)
    local range = {
      start = { line = vim.fn.line('w0', win) - 1, character = 0 },
      ['end'] = { line = vim.fn.line('w$', win) - 1, character = 0 },
    }
    by_buf[bufnr] = by_buf[bufnr] or {}
    table.insert(by_buf[bufnr], range)
  end
  for bufnr, ranges in pairs(by_buf) do
    local client = vim.lsp.get_clients({ bufnr = bufnr, name = 'lossmap' })[1]
    if client then
      client:notify('lossmap/visibleRanges', {
        textDocument = { uri = vim.uri_from_bufnr(bufnr) },
        ranges = ranges,
      })
    end
  end
end
vim.api.nvim_create_autocmd({ 'WinScrolled', 'BufWinEnter', 'LspAttach' }, {
  callback = function()
    -- Each event bumps a counter; only the callback of the last one reports.
    pending = pending + 1
    local mine = pending
    vim.defer_fn(function()
      if mine == pending then
        report_visible()
      end
    end, 250)
  end,
})
