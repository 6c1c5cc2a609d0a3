-- ARGV[1]: channel, ARGV[2]: message.
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 1
