package scan

import (
	"context"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"

	"github.com/pgpseudo/pgpseudo/crypto"
	"github.com/pgpseudo/pgpseudo/policy"
)

// Type OIDs the scanner reads values of or proposes transforms for.
const (
	oidName        = 19
	oidText        = 25
	oidBPChar      = 1042
	oidVarchar     = 1043
	oidDate        = 1082
	oidTimestamp   = 1114
	oidTimestampTZ = 1184
)

// Table is a table as the catalog describes it.
type Table struct {
	Name policy.TableName
	// Kind is pg_class.relkind: r, p or m.
	Kind byte
	// RelTuples is the planner's row estimate (-1 or 0: never analysed).
	RelTuples  float64
	Columns    []Column
	PrimaryKey []string
}

// Column is a column with its type resolved through domains.
type Column struct {
	Name string
	// TypeName is the declared type as format_type prints it.
	TypeName string
	// BaseOID is the type OID after domains (a domain over char(5) is
	// bpchar): what the proxy sees in RowDescription and what transforms
	// are checked against.
	BaseOID uint32
	// Category is pg_type.typcategory of the base type (S: string).
	Category byte
	// Enum: enums are never personal by value and are not sampled.
	Enum bool
	// MaxLen is a varchar(n) or char(n) column's n (0: none): a proposed
	// transform must fit it.
	MaxLen int
	attno  int16
}

// textLike: values are read and validated as text.
func (c Column) textLike() bool { return c.Category == 'S' && !c.Enum }

// dateLike: values are checked for dates of birth.
func (c Column) dateLike() bool {
	return c.BaseOID == oidDate || c.BaseOID == oidTimestamp || c.BaseOID == oidTimestampTZ
}

// ForeignKey is one foreign key constraint, columns in key order.
type ForeignKey struct {
	From     policy.TableName
	FromCols []string
	To       policy.TableName
	ToCols   []string
}

// Schema is what the scanner reads from the catalog.
type Schema struct {
	Tables      []Table
	ForeignKeys []ForeignKey
}

const columnsQuery = `
SELECT c.oid, n.nspname, c.relname, c.relkind::text, c.reltuples::float8, a.attnum, a.attname,
       pg_catalog.format_type(a.atttypid, a.atttypmod), a.atttypid, a.atttypmod
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'p', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid)
ORDER BY n.nspname, c.relname, a.attnum`

// typesQuery lists every type's base (domains), category and enum-ness:
// domains are resolved in Go, however deeply they nest.
const typesQuery = `SELECT t.oid, t.typtype::text, t.typbasetype, t.typcategory::text, t.typtypmod FROM pg_catalog.pg_type t WHERE t.typtype IN ('b', 'd', 'e')`

const constraintsQuery = `
SELECT con.contype::text, con.conrelid, con.conkey, con.confrelid, coalesce(con.confkey, '{}')
FROM pg_catalog.pg_constraint con
WHERE con.contype IN ('p', 'f') AND con.conrelid <> 0
ORDER BY con.conrelid, con.conname`

// ReadSchema reads tables (not partitions or inheritance children: they
// take their root's policy), columns, primary and foreign keys.
func ReadSchema(ctx context.Context, conn *pgx.Conn) (*Schema, error) {
	type typ struct {
		kind     string
		base     uint32
		category string
		typmod   int32
	}
	types := map[uint32]typ{}
	rows, err := conn.Query(ctx, typesQuery)
	if err != nil {
		return nil, fmt.Errorf("read types: %w", err)
	}
	for rows.Next() {
		var oid uint32
		var t typ
		if err := rows.Scan(&oid, &t.kind, &t.base, &t.category, &t.typmod); err != nil {
			return nil, fmt.Errorf("read types: %w", err)
		}
		types[oid] = t
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read types: %w", err)
	}
	// resolve returns a type's base after domains, its entry, and the
	// innermost type modifier a domain gives (typmod when none does).
	resolve := func(oid uint32, typmod int32) (uint32, typ, int32) {
		for range 32 { // domains over domains, but never a cycle
			t, ok := types[oid]
			if !ok || t.kind != "d" {
				return oid, t, typmod
			}
			if typmod < 0 {
				typmod = t.typmod
			}
			oid = t.base
		}
		return oid, types[oid], typmod
	}

	s := &Schema{}
	byOID := map[uint32]int{}
	rows, err = conn.Query(ctx, columnsQuery)
	if err != nil {
		return nil, fmt.Errorf("read columns: %w", err)
	}
	for rows.Next() {
		var (
			relid   uint32
			tn      policy.TableName
			kind    string
			tuples  float64
			col     Column
			typeOID uint32
			typmod  int32
		)
		if err := rows.Scan(&relid, &tn.Schema, &tn.Table, &kind, &tuples, &col.attno, &col.Name, &col.TypeName, &typeOID, &typmod); err != nil {
			return nil, fmt.Errorf("read columns: %w", err)
		}
		base, t, typmod := resolve(typeOID, typmod)
		col.BaseOID = base
		if (base == crypto.OIDVarchar || base == crypto.OIDBPChar) && typmod > 4 {
			col.MaxLen = int(typmod - 4)
		}
		col.Enum = t.kind == "e"
		if t.category != "" {
			col.Category = t.category[0]
		}
		i, ok := byOID[relid]
		if !ok {
			i = len(s.Tables)
			byOID[relid] = i
			s.Tables = append(s.Tables, Table{Name: tn, Kind: kind[0], RelTuples: tuples})
		}
		s.Tables[i].Columns = append(s.Tables[i].Columns, col)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read columns: %w", err)
	}
	colName := func(relid uint32, attno int16) (string, bool) {
		i, ok := byOID[relid]
		if !ok {
			return "", false
		}
		for _, c := range s.Tables[i].Columns {
			if c.attno == attno {
				return c.Name, true
			}
		}
		return "", false
	}
	rows, err = conn.Query(ctx, constraintsQuery)
	if err != nil {
		return nil, fmt.Errorf("read constraints: %w", err)
	}
	for rows.Next() {
		var (
			kind        string
			rel, frel   uint32
			keys, fkeys []int16
		)
		if err := rows.Scan(&kind, &rel, &keys, &frel, &fkeys); err != nil {
			return nil, fmt.Errorf("read constraints: %w", err)
		}
		from, ok := names(colName, rel, keys)
		if !ok {
			continue // a partition's or another relation's constraint
		}
		switch kind {
		case "p":
			s.Tables[byOID[rel]].PrimaryKey = from
		case "f":
			to, ok := names(colName, frel, fkeys)
			if !ok || len(to) != len(from) {
				continue
			}
			s.ForeignKeys = append(s.ForeignKeys, ForeignKey{From: s.Tables[byOID[rel]].Name, FromCols: from, To: s.Tables[byOID[frel]].Name, ToCols: to})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read constraints: %w", err)
	}
	sort.SliceStable(s.ForeignKeys, func(i, j int) bool {
		return s.ForeignKeys[i].From.String() < s.ForeignKeys[j].From.String()
	})
	return s, nil
}

func names(colName func(uint32, int16) (string, bool), rel uint32, attnos []int16) ([]string, bool) {
	out := make([]string, 0, len(attnos))
	for _, a := range attnos {
		n, ok := colName(rel, a)
		if !ok {
			return nil, false
		}
		out = append(out, n)
	}
	return out, len(out) > 0
}
