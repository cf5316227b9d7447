-- Prints wrk's summary as one machine-readable line for bench/run.sh:
-- WRK_RESULT requests duration_us p50_us p99_us connect read write status timeout
-- Only a done() hook: no per-request Lua, so it costs wrk nothing.
done = function(summary, latency, requests)
	local e = summary.errors
	io.write(string.format("WRK_RESULT %d %d %d %d %d %d %d %d %d\n",
		summary.requests, summary.duration,
		latency:percentile(50), latency:percentile(99),
		e.connect, e.read, e.write, e.status, e.timeout))
end
