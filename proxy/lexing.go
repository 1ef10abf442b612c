package proxy

import (
	"context"
	"fmt"

	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// lexingUnsafe says why the session's settings would let the server read
// SQL text differently from pgpseudo's lexer (UTF-8,
// standard_conforming_strings on), or "" when they do not. The values are
// the server's own, from ParameterStatus: startup options, role and
// database settings and SET all end up there.
func (s *session) lexingUnsafe() string {
	if v := s.trk.Param("standard_conforming_strings"); v != "on" {
		return fmt.Sprintf("the server reports standard_conforming_strings = %q for this session", v)
	}
	if v := s.trk.Param("client_encoding"); !sqlinfo.SafeClientEncoding(v) {
		return fmt.Sprintf("the server reports client_encoding = %q for this session, an encoding whose characters can contain quote or backslash bytes", v)
	}
	return ""
}

// lexingRefusal is the FATAL error that ends a restricted session whose
// lexing settings are unsafe.
func lexingRefusal(role, why string) error {
	return refuse(codeInsufficientPriv, "pgpseudo: "+why+"; role "+role+
		" may not use it (rule: restricted sessions keep standard_conforming_strings on and a client_encoding in which no character can hide a quote or backslash)", nil)
}

const keywordsQuery = `SELECT word, catcode FROM pg_catalog.pg_get_keywords()`

// keywords returns the server's keyword list, read once per server version
// through the lookup connection of database.
func (c *catalog) keywords(ctx context.Context, database, version string) (sqlinfo.Keywords, error) {
	c.mu.Lock()
	kw := c.kw[version]
	c.mu.Unlock()
	if kw != nil {
		return kw, nil
	}
	pool, err := c.conns(ctx, database)
	if err != nil {
		return nil, err
	}
	rows, err := pool.Query(ctx, keywordsQuery)
	if err != nil {
		return nil, fmt.Errorf("read the server's keywords: %w", err)
	}
	defer rows.Close()
	kw = sqlinfo.Keywords{}
	for rows.Next() {
		var word, cat string
		if err := rows.Scan(&word, &cat); err != nil {
			return nil, fmt.Errorf("read the server's keywords: %w", err)
		}
		if cat != "" {
			kw[word] = cat[0]
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the server's keywords: %w", err)
	}
	c.mu.Lock()
	c.kw[version] = kw
	c.mu.Unlock()
	return kw, nil
}
