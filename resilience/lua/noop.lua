-- A trivial script: the floor of one EVALSHA round trip (benchmarks, health pings).
return 1
