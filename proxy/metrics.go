package proxy

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pgpseudo/pgpseudo/audit"
	"github.com/pgpseudo/pgpseudo/crypto"
	"github.com/pgpseudo/pgpseudo/internal/lru"
)

// metrics are the server's Prometheus metrics (docs/operations.md lists
// them). Every label takes its values from a bounded set: policy role
// names, outcomes, rule names, transformer kinds, SQLSTATEs, stages.
// Each Server has its own registry: nothing is package-level.
type metrics struct {
	reg           *prometheus.Registry
	sessionsOpen  *prometheus.GaugeVec
	sessions      *prometheus.CounterVec
	loginsRefused *prometheus.CounterVec
	statements    *prometheus.CounterVec
	refusals      *prometheus.CounterVec
	rewritten     *prometheus.CounterVec
	stage         *prometheus.HistogramVec
	keyRefreshes  *prometheus.CounterVec
	keysLoaded    prometheus.Gauge
	policyLoads   *prometheus.CounterVec
	auditFailures prometheus.Counter
	upstreamFails prometheus.Counter
	upstreamReuse *prometheus.CounterVec
	shadowDiffs   *prometheus.CounterVec
}

// Stages timed by pgpseudo_stage_duration_seconds.
const (
	stageParse       = "parse"
	stageAnalyse     = "analyse"
	stageServerCheck = "server_check"
	stageAuditWrite  = "audit_write"
	stagePlan        = "plan"
	stageLogin       = "login"
	// stageRewrite is a statement's total time rewriting its rows.
	stageRewrite = "rewrite"
)

func newMetrics() *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		reg: reg,
		sessionsOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgpseudo_sessions_open",
			Help: "Client sessions open now, by policy role."}, []string{"role"}),
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgpseudo_sessions_total",
			Help: "Client sessions that logged in, by policy role."}, []string{"role"}),
		loginsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgpseudo_logins_refused_total",
			Help: "Logins refused, by the SQLSTATE the client was sent."}, []string{"sqlstate"}),
		statements: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgpseudo_statements_total",
			Help: "Statements finished, by outcome (ok, refused, error, cancelled)."}, []string{"outcome"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgpseudo_refusals_total",
			Help: "Statements refused by pgpseudo, by rule."}, []string{"rule"}),
		rewritten: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgpseudo_rewritten_values_total",
			Help: "Result values rewritten, by transformer (values sent as NULL count as nulled)."}, []string{"transform"}),
		stage: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "pgpseudo_stage_duration_seconds",
			Help:    "Time spent per stage: login, parse, analyse (the static analysis), server_check, plan (a result's column plan), rewrite (a statement's rows, in total), audit_write.",
			Buckets: prometheus.ExponentialBuckets(25e-6, 2.5, 12)}, []string{"stage"}),
		keyRefreshes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgpseudo_key_refreshes_total",
			Help: "Keyset loads from the key provider, by result (ok, failed)."}, []string{"result"}),
		keysLoaded: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pgpseudo_keys_loaded_timestamp_seconds",
			Help: "When the keyset was last loaded successfully (0: never); its age tells how stale cached keys are."}),
		policyLoads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgpseudo_policy_loads_total",
			Help: "Policy loads and reloads, by result (ok, failed; a failed reload keeps the previous policy)."}, []string{"result"}),
		auditFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "pgpseudo_audit_write_failures_total",
			Help: "Audit records that could not be written."}),
		upstreamFails: prometheus.NewCounter(prometheus.CounterOpts{Name: "pgpseudo_upstream_connect_failures_total",
			Help: "Connections to the database that could not be opened."}),
		upstreamReuse: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgpseudo_upstream_reuse_total",
			Help: "Upstream sessions kept for reuse (parked), taken by a login (reused) or not kept (discarded); upstream.reuse."}, []string{"result"}),
		shadowDiffs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgpseudo_shadow_differences_total",
			Help: "Differences the candidate policy (policy_shadow) would have made, by kind; never enforced."}, []string{"kind"}),
	}
	reg.MustRegister(m.sessionsOpen, m.sessions, m.loginsRefused, m.statements, m.refusals, m.rewritten, m.stage,
		m.keyRefreshes, m.keysLoaded, m.policyLoads, m.auditFailures, m.upstreamFails, m.upstreamReuse, m.shadowDiffs,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{"ok", "failed"} {
		m.keyRefreshes.WithLabelValues(r)
		m.policyLoads.WithLabelValues(r)
	}
	for _, k := range audit.ShadowKinds() {
		m.shadowDiffs.WithLabelValues(k)
	}
	return m
}

// observe records the time since start for stage.
func (m *metrics) observe(stage string, start time.Time) {
	m.stage.WithLabelValues(stage).Observe(time.Since(start).Seconds())
}

// statement counts a finished statement and the values it rewrote.
func (m *metrics) statement(a *stmtAudit, outcome audit.Outcome) {
	m.statements.WithLabelValues(string(outcome)).Inc()
	if d := a.rewriteTime(); d > 0 {
		m.stage.WithLabelValues(stageRewrite).Observe(d.Seconds())
	}
	if a.refusal != nil && a.refusal.Rule != "" {
		m.refusals.WithLabelValues(a.refusal.Rule).Inc()
	}
	if a.rows == 0 {
		return
	}
	for _, c := range a.cols {
		switch {
		case c.Decision == audit.DecisionNulled:
			m.rewritten.WithLabelValues("nulled").Add(float64(a.rows))
		case c.Transformer != "":
			m.rewritten.WithLabelValues(c.Transformer).Add(float64(a.rows))
		}
	}
}

// gaugeFuncs registers metrics read from the server's parts when scraped.
func (m *metrics) gaugeFuncs(s *Server) {
	if s.aud != nil {
		stats := func(f func(audit.Stats) uint64) func() float64 {
			return func() float64 { return float64(f(s.aud.Stats())) }
		}
		m.reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "pgpseudo_audit_records_total",
				Help: "Audit records written since start."}, stats(func(st audit.Stats) uint64 { return st.Records })),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "pgpseudo_audit_records_dropped_total",
				Help: "Audit records lost with on_failure: continue."}, stats(func(st audit.Stats) uint64 { return st.Dropped })),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pgpseudo_audit_unsynced_records",
				Help: "Audit records written but not yet known to be on disk."}, stats(func(st audit.Stats) uint64 { return st.Records - st.Synced })),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pgpseudo_audit_unsigned_records",
				Help: "Audit records no signed checkpoint covers yet (grows while the signer is unreachable)."},
				stats(func(st audit.Stats) uint64 { return st.Unsigned })),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "pgpseudo_audit_sign_failures_total",
				Help: "Audit checkpoints the signer could not sign."}, stats(func(st audit.Stats) uint64 { return st.SignFailures })),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pgpseudo_audit_down",
				Help: "1 while the audit log cannot be written and statements are refused."}, func() float64 { return b2f(s.auditDown.Load()) }),
		)
	}
	if s.keys != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pgpseudo_keys_primary_version",
			Help: "The primary key version new tokens are made with (0 before the first load)."},
			func() float64 { return float64(s.keysInUse.Load()) }))
		if a, ok := s.keys.(interface{ AuthStats() crypto.AuthStats }); ok {
			m.reg.MustRegister(
				prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "pgpseudo_vault_login_failures_total",
					Help: "Failed Vault logins (at start, and re-logins after a failed renewal)."},
					func() float64 { return float64(a.AuthStats().LoginFailures) }),
				prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "pgpseudo_vault_renewal_failures_total",
					Help: "Failed Vault token renewals."}, func() float64 { return float64(a.AuthStats().RenewFailures) }),
			)
		}
	}
	caches := map[string]func() lru.Stats{"transformers": s.transformers.CacheStats}
	if s.verdicts != nil {
		caches["verdicts"] = s.verdicts.Stats
		caches["catalog"] = s.catalog.CacheStats
	}
	m.reg.MustRegister(cacheCollector(caches))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// cacheCollector reports each cache's lookups, evictions and size.
type cacheCollector map[string]func() lru.Stats

var (
	cacheLookupsDesc = prometheus.NewDesc("pgpseudo_cache_lookups_total",
		"Cache lookups, by cache (verdicts, catalog, transformers) and result (hit, miss).", []string{"cache", "result"}, nil)
	cacheEvictionsDesc = prometheus.NewDesc("pgpseudo_cache_evictions_total",
		"Entries evicted to keep a cache within its bounds.", []string{"cache"}, nil)
	cacheBytesDesc = prometheus.NewDesc("pgpseudo_cache_bytes",
		"Bytes a cache holds, as its bound counts them.", []string{"cache"}, nil)
	cacheEntriesDesc = prometheus.NewDesc("pgpseudo_cache_entries",
		"Entries a cache holds.", []string{"cache"}, nil)
)

func (c cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- cacheLookupsDesc
	ch <- cacheEvictionsDesc
	ch <- cacheBytesDesc
	ch <- cacheEntriesDesc
}

func (c cacheCollector) Collect(ch chan<- prometheus.Metric) {
	for name, f := range c {
		st := f()
		ch <- prometheus.MustNewConstMetric(cacheLookupsDesc, prometheus.CounterValue, float64(st.Hits), name, "hit")
		ch <- prometheus.MustNewConstMetric(cacheLookupsDesc, prometheus.CounterValue, float64(st.Misses), name, "miss")
		ch <- prometheus.MustNewConstMetric(cacheEvictionsDesc, prometheus.CounterValue, float64(st.Evictions), name)
		ch <- prometheus.MustNewConstMetric(cacheBytesDesc, prometheus.GaugeValue, float64(st.Bytes), name)
		ch <- prometheus.MustNewConstMetric(cacheEntriesDesc, prometheus.GaugeValue, float64(st.Entries), name)
	}
}

// Metrics returns the server's metrics for an admin listener.
func (s *Server) Metrics() prometheus.Gatherer { return s.metrics.reg }

// metricsRole is the session's policy role as metrics label it: "none"
// without a policy.
func (s *session) metricsRole() string {
	if s.srv.policy == nil {
		return "none"
	}
	_, r := s.currentPolicy()
	return r.Name
}

// refusedLogin counts a login the client was refused with an error.
func (s *session) refusedLogin(err error) {
	var ce *clientError
	if errors.As(err, &ce) {
		s.srv.metrics.loginsRefused.WithLabelValues(ce.Code).Inc()
	}
}
