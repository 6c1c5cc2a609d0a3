-- Shared helpers, included before a script's own source.
local function twice(x)
  return 2 * tonumber(x)
end
