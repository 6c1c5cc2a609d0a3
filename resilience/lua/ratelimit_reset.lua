-- Forget one user key of a rate limiter: delete every state key in KEYS; return how many existed.
return redis.call('DEL', unpack(KEYS))
