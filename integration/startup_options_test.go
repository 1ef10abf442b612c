package integration

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestStartupOptionsLocked: a restricted session's startup options are
// read as the server reads them, so an escaped or joined form of a locked
// setting is refused like the plain one; an unlocked one logs in.
func TestStartupOptionsLocked(t *testing.T) {
	kunden(t)
	p := policyProxy(t, samplePolicy)
	ctx := context.Background()
	login := func(options string) error {
		cfg, err := pgx.ParseConfig(p.dsn(userBI, samplePass, dbKunden))
		if err != nil {
			t.Fatal(err)
		}
		cfg.RuntimeParams["options"] = options
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			c.Close(ctx)
		}
		return err
	}
	for _, opt := range []string{
		`-c plan_cache_mode=force_custom_plan`,
		`-c plan\_cache\_mode=force_custom_plan`,
		`--plan\_cache\_mode=force_generic_plan`,
		`-c plan_cache_mod\e=force_generic_plan`,
		`-c client\_min\_messages=debug5 -c debug\_print\_plan=on`,
		`-Pc trace_sort=on`,
	} {
		err := login(opt)
		if err == nil || !strings.Contains(err.Error(), "the startup parameters set") {
			t.Errorf("options %q: %v, want the login refused", opt, err)
		}
	}
	if err := login(`-c work_mem=1MB -c application_name=a\ b`); err != nil {
		t.Fatalf("unlocked options refused: %v", err)
	}
}
