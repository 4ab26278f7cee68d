-- Sets the room's config to ARGV[2].
redis.call('SET', B .. ':config', ARGV[2])
publish({k = 'config', v = bump(), value = ARGV[2]})
return 1
