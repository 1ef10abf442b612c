package proxy

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/pgpseudo/pgpseudo/policy"
	"github.com/pgpseudo/pgpseudo/proxy/catalog"
)

// checkPolicyAgainstDB runs what `policy check --db` reports against
// policy_database (default auth.auth_database) and logs each finding as a warning. It neither
// blocks the start or a reload nor changes what is enforced: a column the
// database lacks cannot leak, a transform that cannot fit a column fails
// closed when it meets a value, and the schema may be migrated after the
// policy. The operator learns of the mismatch before a client does.
func (s *Server) checkPolicyAgainstDB(ctx context.Context, pol *policy.Policy) {
	if s.cfg.Auth.AuthUser == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	db := s.cfg.PolicyCheckDatabase()
	log := s.log.With(zap.String("database", db), zap.String("policy_sha256", pol.Hash))
	conn, err := catalog.Connect(ctx, s.cfg, db)
	if err != nil {
		log.Warn("policy check against the database could not run", zap.Error(err))
		return
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tables, err := catalog.ReadSchema(ctx, conn)
	if err != nil {
		log.Warn("policy check against the database could not run", zap.Error(err))
		return
	}
	findings := pol.CheckSchema(tables)
	if s.cfg.PolicyDatabase == "" && noTableThere(pol, tables) {
		// The auth database is only the default: a policy for another
		// database is not checked against it finding by finding.
		log.Info("policy not checked: none of its tables is in this database; set policy_database to the database it describes")
		return
	}
	problems := 0
	for _, f := range findings {
		if f.Severity == policy.SeverityError {
			problems++
		}
		log.Warn("policy check", zap.String("finding", f.String()))
	}
	log.Info("policy checked against the database", zap.Int("findings", len(findings)), zap.Int("problems", problems))
}

// noTableThere reports that the database has none of the tables the
// policy classifies.
func noTableThere(pol *policy.Policy, tables []policy.DBTable) bool {
	have := map[policy.TableName]bool{}
	for _, t := range tables {
		have[t.Name] = true
	}
	for _, t := range pol.Tables() {
		if have[t] {
			return false
		}
	}
	return true
}
