// Command centric runs the Centric customer CRM service and manages it.
//
//	centric serve                      run the API (private PostgreSQL unless DATABASE_URL is set)
//	centric migrate                    apply database migrations and exit
//	centric keys create [-root ID] [-rate N -burst N] NAME PERM...
//	                                   issue an API key (permissions: customers:read, …, admin),
//	                                   with -root confined to that business customer's subtree,
//	                                   with -rate and -burst limited by a rate of its own
//	centric keys list                  list API keys
//	centric keys revoke ID             revoke an API key
//	centric demo [flags]               fill an empty database with a synthetic customer base
//	centric fit [flags]                run one model fit and scoring now, and print it
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

	"github.com/centric-crm/centric/internal/analytics"
	"github.com/centric-crm/centric/internal/app"
	"github.com/centric-crm/centric/internal/config"
	"github.com/centric-crm/centric/internal/crm"
	"github.com/centric-crm/centric/internal/demo"
)

const usage = `usage: centric <command> [arguments]

commands:
  serve                         run the API
  migrate                       apply database migrations and exit
  keys create [-root ID] [-rate N -burst N] NAME PERMISSION…
                                issue an API key; permissions: %s;
                                -root confines it to that business customer's subtree,
                                -rate (requests per second) and -burst give it its own rate limit
  keys list                     list API keys
  keys revoke ID                revoke an API key
  demo [flags]                  fill an empty database with a synthetic customer base
                                (centric demo -h lists the flags)
  fit [flags]                   fit the models and score every customer now, and print
                                the run (centric fit -h lists the flags)

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
	var demoOpts demo.Options
	var fitOpts analytics.RunSettings
	switch command {
	case "serve", "migrate", "keys":
	case "demo":
		if demoOpts, err = parseDemoFlags(rest, time.Now(), stderr); err != nil {
			return helpIsNoError(err)
		}
	case "fit":
		if fitOpts, err = parseFitFlags(rest, stderr); err != nil {
			return helpIsNoError(err)
		}
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
	case "demo":
		return loadDemo(ctx, a, demoOpts, stdout)
	case "fit":
		return fitNow(ctx, a, fitOpts, stdout)
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
		flags := flag.NewFlagSet("centric keys create", flag.ContinueOnError)
		flags.SetOutput(io.Discard)
		root := flags.String("root", "", "confine the key to the subtree of this business customer (its id)")
		rate := flags.Float64("rate", 0, "the key's own rate limit in requests per second, with -burst")
		burst := flags.Int("burst", 0, "the key's own burst of requests, with -rate")
		if err := flags.Parse(args[1:]); err != nil {
			return fmt.Errorf("keys create: %w", err)
		}
		rest := flags.Args()
		if len(rest) < 2 {
			return fmt.Errorf("keys create: want [-root ID] [-rate N -burst N] a name and at least one permission (%s)", permissionList())
		}
		req := crm.NewAPIKey{Name: rest[0]}
		for _, p := range rest[1:] {
			req.Permissions = append(req.Permissions, crm.Permission(p))
		}
		if *root != "" {
			id, err := uuid.Parse(*root)
			if err != nil {
				return fmt.Errorf("keys create: -root %q is not a customer id", *root)
			}
			req.RootCustomerID = &id
		}
		if *rate != 0 || *burst != 0 {
			req.RateLimit = &crm.RateLimit{PerSecond: *rate, Burst: *burst}
		}
		k, token, err := ks.Issue(ctx, nil, req)
		if err != nil {
			return fmt.Errorf("keys create: %w", err)
		}
		fmt.Fprintf(stdout, "id: %s\nkey: %s\n(the key is shown only now)\n", k.ID, token)
		return nil
	case "list":
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tNAME\tPREFIX\tPERMISSIONS\tROOT\tRATE LIMIT\tCREATED\tREVOKED")
		page := crm.PageRequest{Limit: crm.MaxPageSize}
		for {
			list, err := ks.List(ctx, crm.Scope{}, page)
			if err != nil {
				return err
			}
			for _, k := range list.Keys {
				revoked, root, limit := "-", "-", "default"
				if k.RevokedAt != nil {
					revoked = k.RevokedAt.Format(time.RFC3339)
				}
				if k.RootCustomerID != nil {
					root = k.RootCustomerID.String()
				}
				if k.RateLimit != nil {
					limit = fmt.Sprintf("%g/s,burst=%d", k.RateLimit.PerSecond, k.RateLimit.Burst)
				}
				perms := make([]string, len(k.Permissions))
				for i, p := range k.Permissions {
					perms[i] = string(p)
				}
				fmt.Fprintf(w, "%s\t%s\tck_%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Prefix, strings.Join(perms, ","), root, limit, k.CreatedAt.Format(time.RFC3339), revoked)
			}
			if list.NextCursor == "" {
				return w.Flush()
			}
			page.Cursor = list.NextCursor
		}
	case "revoke":
		if len(args) != 2 {
			return errors.New("keys revoke: want the key's id")
		}
		id, err := uuid.Parse(args[1])
		if err != nil {
			return fmt.Errorf("keys revoke: %q is not a key id", args[1])
		}
		if _, err := ks.Revoke(ctx, crm.Scope{}, id); err != nil {
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

// helpIsNoError returns nil for a subcommand's -h, whose usage was printed, and err otherwise.
func helpIsNoError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

const demoUsage = `usage: centric demo [flags]

Fills an empty database with a synthetic customer base: distributors, their dealers,
consumers and business accounts in a hierarchy, and years of purchases, refunds and costs
drawn from the BG/NBD and Gamma-Gamma models. The same flags, -end included, give the
same data.

flags:
`

// parseDemoFlags parses the flags of centric demo; the history ends at now unless -end is set.
func parseDemoFlags(args []string, now time.Time, stderr io.Writer) (demo.Options, error) {
	opts := demo.DefaultOptions(now)
	flags := flag.NewFlagSet("centric demo", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() {
		fmt.Fprint(stderr, demoUsage)
		flags.PrintDefaults()
	}
	flags.IntVar(&opts.Customers, "customers", opts.Customers, "number of accounts, channel partners included (about 10 transactions each)")
	flags.Uint64Var(&opts.Seed, "seed", opts.Seed, "random seed: the same seed and flags give the same data")
	flags.Float64Var(&opts.Years, "years", opts.Years, "years of history before the end")
	flags.StringVar(&opts.Currency, "currency", opts.Currency, "ISO 4217 currency of every amount")
	end := flags.String("end", "", "end of the history, RFC 3339 (default now)")
	if err := flags.Parse(args); err != nil {
		return demo.Options{}, err
	}
	if flags.NArg() > 0 {
		flags.Usage()
		return demo.Options{}, fmt.Errorf("demo: unexpected argument %q", flags.Arg(0))
	}
	if *end != "" {
		t, err := time.Parse(time.RFC3339, *end)
		if err != nil {
			return demo.Options{}, fmt.Errorf("demo: -end %q is not an RFC 3339 time", *end)
		}
		if t.After(now) {
			return demo.Options{}, errors.New("demo: -end must not be in the future")
		}
		opts.End = t
	}
	if _, err := demo.New(opts); err != nil {
		return demo.Options{}, err // "demo options: …"
	}
	return opts, nil
}

// loadDemo generates the demo data and loads it.
func loadDemo(ctx context.Context, a *app.App, opts demo.Options, stdout io.Writer) error {
	g, err := demo.New(opts)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	o := g.Options()
	fmt.Fprintf(stdout, "Generating %d accounts with %g years of history up to %s (seed %d, %s) and loading them...\n",
		o.Customers, o.Years, o.End.Format(time.RFC3339), o.Seed, o.Currency)
	load, err := a.DB.LoadDemo(ctx, g.Customers(), g.Transactions())
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	fmt.Fprintf(stdout, "Loaded in %s (copy %s, vacuum and analyse %s):\n",
		(load.Copy + load.Vacuum).Round(time.Millisecond), load.Copy.Round(time.Millisecond), load.Vacuum.Round(time.Millisecond))
	fmt.Fprintf(stdout, "  customers            %d (%d distributors and dealers)\n", load.Customers, g.Partners())
	fmt.Fprintf(stdout, "  external references  %d\n", load.ExternalRefs)
	fmt.Fprintf(stdout, "  transactions         %d\n", load.Transactions)
	fmt.Fprintf(stdout, "\nScore them with a model run: centric fit -unit day (or POST /v1/analytics/model-runs while serving).\n")
	return nil
}

const fitUsage = `usage: centric fit [flags]

Queues a model run, executes it in this process, waits for it and prints it: the fitted
BG/NBD (or MBG/NBD) and Gamma-Gamma parameters, and the timings of the summary, fit and
scoring of every customer. Exits non-zero when the run fails.

flags:
`

// parseFitFlags parses the flags of centric fit.
func parseFitFlags(args []string, stderr io.Writer) (analytics.RunSettings, error) {
	flags := flag.NewFlagSet("centric fit", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() {
		fmt.Fprint(stderr, fitUsage)
		flags.PrintDefaults()
	}
	model := flags.String("model", string(analytics.ModelBGNBD), "purchase model: bgnbd or mbgnbd")
	unit := flags.String("unit", string(analytics.UnitWeek), "time unit of the fit: day, week or month")
	calibrationEnd := flags.String("calibration-end", "", "end of the calibration period, RFC 3339 (default now)")
	currency := flags.String("currency", "", "currency of the purchases to fit (default the most used)")
	penalty := flags.Float64("penalty", 0, "L2 penalty on the log-parameters, 0 to 100")
	if err := flags.Parse(args); err != nil {
		return analytics.RunSettings{}, err
	}
	if flags.NArg() > 0 {
		flags.Usage()
		return analytics.RunSettings{}, fmt.Errorf("fit: unexpected argument %q", flags.Arg(0))
	}
	settings := analytics.RunSettings{
		Model: analytics.Model(*model), Unit: analytics.TimeUnit(*unit), Currency: *currency, Penalty: *penalty,
	}
	if *calibrationEnd != "" {
		t, err := time.Parse(time.RFC3339, *calibrationEnd)
		if err != nil {
			return analytics.RunSettings{}, fmt.Errorf("fit: -calibration-end %q is not an RFC 3339 time", *calibrationEnd)
		}
		settings.CalibrationEnd = t
	}
	return settings, nil
}

// fitNow queues a model run, executes it with an in-process worker, and prints its outcome.
func fitNow(ctx context.Context, a *app.App, settings analytics.RunSettings, stdout io.Writer) error {
	began := time.Now()
	r, err := a.Analytics.StartRun(ctx, settings)
	if err != nil {
		return fmt.Errorf("fit: %w", err)
	}
	fmt.Fprintf(stdout, "Model run %s queued: %s, unit %s, currency %s, calibration end %s.\n",
		r.ID, r.Model, r.Unit, r.Currency, r.CalibrationEnd.Format(time.RFC3339))
	workCtx, stopWork := context.WithCancel(ctx)
	worked := make(chan struct{})
	go func() {
		defer close(worked)
		a.Analytics.Work(workCtx)
	}()
	defer func() {
		stopWork()
		<-worked
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for r.Status == analytics.RunQueued || r.Status == analytics.RunRunning {
		select {
		case <-ctx.Done():
			return fmt.Errorf("fit: interrupted while run %s was %s: %w", r.ID, r.Status, ctx.Err())
		case <-tick.C:
		}
		if r, err = a.Analytics.Run(ctx, r.ID); err != nil {
			return fmt.Errorf("fit: %w", err)
		}
	}
	wall := time.Since(began)
	if r.Status != analytics.RunSucceeded {
		if r.Error != nil {
			return fmt.Errorf("fit: model run %s failed (%s): %s", r.ID, r.Error.Code, r.Error.Message)
		}
		return fmt.Errorf("fit: model run %s ended %s", r.ID, r.Status)
	}
	printRun(stdout, r, wall)
	return nil
}

// printRun prints a successful run's parameters and timings.
func printRun(w io.Writer, r *analytics.Run, wall time.Duration) {
	res := r.Result
	p := res.Params
	fmt.Fprintf(w, "Model run %s succeeded.\n", r.ID)
	fmt.Fprintf(w, "  customers        %d scored, %d with repeat purchases, %d distinct (x, t_x, T) rows\n",
		res.Customers, res.RepeatCustomers, res.DistinctRows)
	fmt.Fprintf(w, "  purchases from   %s to %s\n", res.FirstPurchaseAt.Format(time.RFC3339), res.LastPurchaseAt.Format(time.RFC3339))
	fmt.Fprintf(w, "  %-16s r = %.6g, alpha = %.6g %ss, a = %.6g, b = %.6g\n", r.Model, p.R, p.Alpha, r.Unit, p.A, p.B)
	fmt.Fprintf(w, "                   log-likelihood %.6f, gradient norm %.2g (%s, %d iterations, last status %s)\n",
		res.Fit.LogLikelihood, res.Fit.GradientNorm, res.Fit.Method, res.Fit.Iterations, res.Fit.Status)
	fmt.Fprintf(w, "  %-16s p = %.6g, q = %.6g, gamma = %.6g (%d customers excluded)\n", "gamma-gamma", p.P, p.Q, p.Gamma, res.SpendExcluded)
	fmt.Fprintf(w, "                   log-likelihood %.6f, gradient norm %.2g (%s, %d iterations, last status %s)\n",
		res.SpendFit.LogLikelihood, res.SpendFit.GradientNorm, res.SpendFit.Method, res.SpendFit.Iterations, res.SpendFit.Status)
	var run time.Duration
	if r.StartedAt != nil && r.FinishedAt != nil {
		run = r.FinishedAt.Sub(*r.StartedAt)
	}
	// The run's score time runs until its scores are stored and committed.
	rest := run.Milliseconds() - res.SummaryMillis - res.FitMillis - res.ScoreMillis
	fmt.Fprintf(w, "  timings          summary %d ms, fit %d ms, score and store %d ms, other %d ms; run %d ms, wall %d ms\n",
		res.SummaryMillis, res.FitMillis, res.ScoreMillis, rest, run.Milliseconds(), wall.Milliseconds())
}
