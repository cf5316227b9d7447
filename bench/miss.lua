-- Every request asks for a different query string, so with the seed's
-- route-cache rules every request is a cache miss (and a cachestore).
local n = 0
request = function()
	n = n + 1
	return wrk.format("GET", "/feedback?miss=" .. n)
end
