// Command centric runs the Centric customer CRM service and manages it.
//
//	centric serve                      run the API (private PostgreSQL unless DATABASE_URL is set)
//	centric migrate                    apply database migrations and exit
//	centric keys create NAME PERM...   issue an API key (permissions: customers:read, …, admin)
//	centric keys list                  list API keys
//	centric keys revoke ID             revoke an API key
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/centric-crm/centric/internal/app"
	"github.com/centric-crm/centric/internal/config"
	"github.com/centric-crm/centric/internal/crm"
)

const usage = `usage: centric <command> [arguments]

commands:
  serve                         run the API
  migrate                       apply database migrations and exit
  keys create NAME PERMISSION…  issue an API key; permissions: %s
  keys list                     list API keys
  keys revoke ID                revoke an API key

Configuration comes from the environment; see README.md.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "centric:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	flags := flag.NewFlagSet("centric", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() { fmt.Fprintf(stderr, usage, permissionList()) }
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() == 0 {
		flags.Usage()
		return errors.New("no command given")
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	command, rest := flags.Arg(0), flags.Args()[1:]
	switch command {
	case "serve", "migrate", "keys":
	default:
		flags.Usage()
		return fmt.Errorf("unknown command %q", command)
	}
	a, err := app.Open(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if cerr := a.Close(closeCtx); cerr != nil {
			logger.Error("close", "error", cerr)
		}
	}()
	switch command {
	case "serve":
		if cfg.GCPercent > 0 {
			debug.SetGCPercent(cfg.GCPercent)
		}
		token, err := a.Keys.Bootstrap(ctx)
		if err != nil {
			return err
		}
		if token != "" {
			fmt.Fprintf(stdout, "No API keys existed, so an admin key was created. It is shown only now:\n\n  %s\n\n", token)
		}
		return a.Serve(ctx, cfg.Addr, cfg.ShutdownTimeout)
	case "migrate":
		fmt.Fprintln(stdout, "migrations applied")
		return nil
	default:
		return keys(ctx, a.Keys, rest, stdout)
	}
}

func keys(ctx context.Context, ks *crm.KeyService, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("keys: want create, list or revoke")
	}
	switch args[0] {
	case "create":
		if len(args) < 3 {
			return fmt.Errorf("keys create: want a name and at least one permission (%s)", permissionList())
		}
		perms := make([]crm.Permission, 0, len(args)-2)
		for _, p := range args[2:] {
			perms = append(perms, crm.Permission(p))
		}
		k, token, err := ks.Create(ctx, args[1], perms)
		if err != nil {
			return fmt.Errorf("keys create: %w", err)
		}
		fmt.Fprintf(stdout, "id: %s\nkey: %s\n(the key is shown only now)\n", k.ID, token)
		return nil
	case "list":
		list, err := ks.List(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tNAME\tPREFIX\tPERMISSIONS\tCREATED\tREVOKED")
		for _, k := range list {
			revoked := "-"
			if k.RevokedAt != nil {
				revoked = k.RevokedAt.Format(time.RFC3339)
			}
			perms := make([]string, len(k.Permissions))
			for i, p := range k.Permissions {
				perms[i] = string(p)
			}
			fmt.Fprintf(w, "%s\t%s\tck_%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Prefix, strings.Join(perms, ","), k.CreatedAt.Format(time.RFC3339), revoked)
		}
		return w.Flush()
	case "revoke":
		if len(args) != 2 {
			return errors.New("keys revoke: want the key's id")
		}
		id, err := uuid.Parse(args[1])
		if err != nil {
			return fmt.Errorf("keys revoke: %q is not a key id", args[1])
		}
		if err := ks.Revoke(ctx, id); err != nil {
			return fmt.Errorf("keys revoke: %w", err)
		}
		fmt.Fprintln(stdout, "revoked", id)
		return nil
	}
	return fmt.Errorf("keys: unknown subcommand %q; want create, list or revoke", args[0])
}

func permissionList() string {
	names := make([]string, len(crm.Permissions))
	for i, p := range crm.Permissions {
		names[i] = string(p)
	}
	return strings.Join(names, ", ")
}
