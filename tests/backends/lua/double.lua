return twice(ARGV[1])
