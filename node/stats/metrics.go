package stats

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gouwsgi/gouwsgi/node/request"
)

// Metrics is the Prometheus view of a node: request counters and latency
// histograms observed as requests finish, and worker/cache gauges read from
// the same sources as the stats server at scrape time.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	src      Sources
}

// NewMetrics registers the collectors.
func NewMetrics(src Sources) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		src: src,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gouwsgi_requests_total", Help: "Requests served, by status class and whether a worker served them.",
		}, []string{"code", "worker"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gouwsgi_request_duration_seconds", Help: "Request duration from head read to response end.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"worker"}),
	}
	m.reg.MustRegister(m.requests, m.latency, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), m)
	return m
}

// LogRequest implements request.Logger.
func (m *Metrics) LogRequest(r *request.Request, res request.Result) {
	served := "python"
	if r.Log.WorkerID == 0 {
		served = "go"
	}
	m.requests.WithLabelValues(strconv.Itoa(res.Status/100)+"xx", served).Inc()
	m.latency.WithLabelValues(served).Observe(res.Duration.Seconds())
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

var (
	descWorkers     = prometheus.NewDesc("gouwsgi_workers", "Workers by status (idle, busy, cheap, respawning).", []string{"status"}, nil)
	descWorkerReqs  = prometheus.NewDesc("gouwsgi_worker_requests_total", "Requests served by each worker id.", []string{"worker"}, nil)
	descHarakiri    = prometheus.NewDesc("gouwsgi_worker_harakiri_total", "Requests killed by harakiri, by worker id.", []string{"worker"}, nil)
	descRespawns    = prometheus.NewDesc("gouwsgi_worker_respawns_total", "Worker respawns, by worker id.", []string{"worker"}, nil)
	descExceptions  = prometheus.NewDesc("gouwsgi_worker_exceptions_total", "Requests whose app raised, by worker id.", []string{"worker"}, nil)
	descRSS         = prometheus.NewDesc("gouwsgi_worker_rss_bytes", "Resident memory of each worker.", []string{"worker"}, nil)
	descListenQueue = prometheus.NewDesc("gouwsgi_listen_queue", "Requests waiting for a worker plus the kernel accept queues.", nil, nil)
	descCacheItems  = prometheus.NewDesc("gouwsgi_cache_items", "Items in each cache.", []string{"cache"}, nil)
	descCacheHits   = prometheus.NewDesc("gouwsgi_cache_hits_total", "Cache hits.", []string{"cache"}, nil)
	descCacheMiss   = prometheus.NewDesc("gouwsgi_cache_misses_total", "Cache misses.", []string{"cache"}, nil)
	descCacheFull   = prometheus.NewDesc("gouwsgi_cache_full_total", "Writes refused or evicting because the cache was full.", []string{"cache"}, nil)
)

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descWorkers, descWorkerReqs, descHarakiri, descRespawns, descExceptions, descRSS, descListenQueue, descCacheItems, descCacheHits, descCacheMiss, descCacheFull} {
		ch <- d
	}
}

// Collect implements prometheus.Collector from a fresh stats snapshot.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	st := m.src.Snapshot()
	byStatus := map[string]float64{"idle": 0, "busy": 0, "cheap": 0, "respawning": 0}
	for _, w := range st.Workers {
		id := strconv.Itoa(w.ID)
		byStatus[w.Status]++
		ch <- prometheus.MustNewConstMetric(descWorkerReqs, prometheus.CounterValue, float64(w.Requests), id)
		ch <- prometheus.MustNewConstMetric(descHarakiri, prometheus.CounterValue, float64(w.HarakiriCount), id)
		ch <- prometheus.MustNewConstMetric(descRespawns, prometheus.CounterValue, float64(w.RespawnCount), id)
		ch <- prometheus.MustNewConstMetric(descExceptions, prometheus.CounterValue, float64(w.Exceptions), id)
		ch <- prometheus.MustNewConstMetric(descRSS, prometheus.GaugeValue, float64(w.RSS), id)
	}
	for status, n := range byStatus {
		ch <- prometheus.MustNewConstMetric(descWorkers, prometheus.GaugeValue, n, status)
	}
	ch <- prometheus.MustNewConstMetric(descListenQueue, prometheus.GaugeValue, float64(st.ListenQueue))
	for _, c := range st.Caches {
		ch <- prometheus.MustNewConstMetric(descCacheItems, prometheus.GaugeValue, float64(c.Items), c.Name)
		ch <- prometheus.MustNewConstMetric(descCacheHits, prometheus.CounterValue, float64(c.Hits), c.Name)
		ch <- prometheus.MustNewConstMetric(descCacheMiss, prometheus.CounterValue, float64(c.Miss), c.Name)
		ch <- prometheus.MustNewConstMetric(descCacheFull, prometheus.CounterValue, float64(c.Full), c.Name)
	}
}
