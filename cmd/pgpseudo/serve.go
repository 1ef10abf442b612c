package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/pgpseudo/pgpseudo/admin"
	"github.com/pgpseudo/pgpseudo/config"
	"github.com/pgpseudo/pgpseudo/proxy"
)

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: pgpseudo serve --config FILE\n\nRuns the proxy until SIGTERM or SIGINT (which drain it); SIGHUP reloads the policy.")
		fs.PrintDefaults()
	}
	configPath := fs.String("config", "", "proxy configuration file (YAML)")
	if err := parseFlags(fs, args, stdout); err != nil {
		return flagError(err)
	}
	if *configPath == "" {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("serve: --config is required")}
	}
	cfg, err := config.Load(*configPath)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.Log)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck // nothing to do about a failed sync at exit
	srv, err := proxy.NewServer(cfg, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	if cfg.Admin.Listen != "" {
		adm, err := admin.New(cfg.Admin, srv.Metrics(), srv.ReadyChecks(), log)
		var ln net.Listener
		if err == nil {
			ln, err = net.Listen("tcp", cfg.Admin.Listen)
		}
		if err != nil {
			srv.Close()
			return fmt.Errorf("admin listener: %w", err)
		}
		go func() {
			if err := adm.Serve(ln); err != nil && !admin.IsClosed(err) {
				log.Error("admin listener failed; the proxy keeps serving", zap.Error(err))
			}
		}()
		// The admin listener outlives the drain: /readyz says "not
		// accepting" meanwhile, so a load balancer stops sending.
		defer adm.Shutdown(context.Background()) //nolint:errcheck // exiting
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
wait:
	for {
		select {
		case err := <-errc:
			return err
		case <-hup:
			// An invalid file keeps the old policy; the server logs why.
			// Cached catalog facts go too: SIGHUP after a migration.
			_ = srv.ReloadPolicy()
			srv.CatalogChanged("")
		case <-ctx.Done():
			break wait
		}
	}
	log.Info("shutting down; waiting for sessions to end", zap.Duration("timeout", cfg.Limits.ShutdownTimeout))
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Limits.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown timeout reached; remaining sessions closed")
	}
	if err := <-errc; err != nil && !errors.Is(err, proxy.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

// newLogger builds the process logger from the log section.
func newLogger(c config.Log) (*zap.Logger, error) {
	var zc zap.Config
	if c.Format == "console" {
		zc = zap.NewDevelopmentConfig()
	} else {
		zc = zap.NewProductionConfig()
		zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	}
	lvl, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.OutputPaths = []string{"stderr"}
	return zc.Build()
}
