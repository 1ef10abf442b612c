package analyze

import (
	"strings"

	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// deniedBuiltin: built-ins that run SQL text, read files, large objects,
// other sessions' data or logical decoding output, or change server state;
// a restricted role may not call them even though they live in pg_catalog.
func deniedBuiltin(name string) bool {
	switch name {
	case "ts_stat", "ts_rewrite", // run a query given as text
		"pg_notify", "pg_logical_emit_message", // send data to other sessions or the WAL
		"pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile",
		"pg_switch_wal", "pg_promote", "pg_create_restore_point", "pg_import_system_collations",
		"setval", "nextval", // write sequences
		"pg_blocking_pids", "pg_safe_snapshot_blocking_pids", // other sessions' process ids
		"pg_file_write", "pg_file_rename", "pg_file_unlink", "pg_file_sync", "pg_logdir_ls",
		"lowrite", "loread", "lo_get", "lo_put", "lo_from_bytea":
		return true
	}
	return false
}

// DeniedFunction reports whether a function name (without schema) is on
// the analysis' deny list; sqlinfo.DeniedFunction's list is included.
func DeniedFunction(name string) bool {
	n := strings.ToLower(name)
	if deniedBuiltin(n) || sqlinfo.DeniedFunction(n) {
		return true
	}
	// Families of such functions.
	for _, p := range [...]string{
		"lo_", "dblink", "pg_read_", "pg_ls_", "pg_logical_slot_", "pg_replication_slot_", "pg_create_physical_replication_slot",
		"pg_create_logical_replication_slot", "pg_drop_replication_slot", "pg_copy_", "binary_upgrade_",
		"query_to_", "table_to_", "cursor_to_", "schema_to_", "database_to_", "xpath",
		"pg_stat_reset", "pg_replication_origin_", "brin_summarize", "brin_desummarize", "gin_clean_pending_list",
		// Advisory locks are shared by every session of the database: one
		// user could block another's.
		"pg_advisory_", "pg_try_advisory_",
	} {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	return false
}
