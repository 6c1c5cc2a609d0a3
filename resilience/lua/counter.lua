-- KEYS[1]: counter; ARGV[1]: increment; ARGV[2]: time to live in milliseconds.
-- Returns the new value. Used by the backend contract tests and as the simplest example of a
-- script with a memory twin (resilience/_backends/_scripts.py).
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return value
