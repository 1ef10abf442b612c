package proxy

import (
	"errors"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// clientSettingsQuery lists the settings the client's startup packet set,
// as the server applied them: whatever spelling the options used
// (escapes, joined switches, aliases), this is what it decided.
const clientSettingsQuery = `SELECT name, setting FROM pg_catalog.pg_settings WHERE source = 'client'`

// lockedClientSetting asks the upstream session which settings the
// client's startup packet set and returns why one of them is locked for a
// restricted role ("" when none is). It runs beside the proxy's own
// reading of the startup packet (screen.LockedStartup), not instead of it.
func (s *session) lockedClientSetting() (string, error) {
	q, _ := (&pgproto3.Query{String: clientSettingsQuery}).Encode(nil)
	if _, err := s.uw.Write(q); err != nil {
		return "", err
	}
	if err := s.uw.Flush(); err != nil {
		return "", err
	}
	why := ""
	for {
		m, err := s.ur.Next()
		if err != nil {
			return "", err
		}
		switch m.Type {
		case 'D':
			var row pgproto3.DataRow
			if err := row.Decode(m.Body()); err == nil && len(row.Values) == 2 && why == "" {
				name, value := string(row.Values[0]), string(row.Values[1])
				if w := sqlinfo.LockedSetting(name, value, true); w != "" {
					why = "the startup parameters set " + name + " (" + w + ")"
				}
			}
		case 'E':
			return "", errors.New("reading the client's settings failed: " + errorMessage(m.Body()))
		case 'Z':
			return why, nil
		}
	}
}
