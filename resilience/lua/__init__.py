"""Lua scripts run by the Redis backend, one file per atomic step (package data)."""
