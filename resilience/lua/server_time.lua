-- The server's clock in seconds (the prelude's now()), as a string: Redis truncates numbers.
local t = now()
return string.format("%.17g", t)
