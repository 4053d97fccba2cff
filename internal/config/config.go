// Package config reads Centric's configuration from the environment: the one place that does.
package config

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config is the validated configuration of the service.
type Config struct {
	// Addr is the address the API listens on (CENTRIC_ADDR, default ":8080").
	Addr string
	// DatabaseURL is the PostgreSQL server to use (DATABASE_URL). Empty starts a private one.
	DatabaseURL string
	// DataDir keeps the private PostgreSQL's data between runs (CENTRIC_DATA_DIR).
	DataDir string
	// PostgresBinDir points at PostgreSQL's executables for the private server (CENTRIC_PG_BIN).
	PostgresBinDir string
	// MaxDBConns bounds the database connection pool (CENTRIC_DB_MAX_CONNS, default 20).
	MaxDBConns int
	// ShutdownTimeout bounds the graceful shutdown (CENTRIC_SHUTDOWN_TIMEOUT, default 15s).
	ShutdownTimeout time.Duration
	// LogLevel is the minimum level logged (CENTRIC_LOG_LEVEL: debug, info, warn, error).
	LogLevel slog.Level
	// GCPercent is the garbage collector's target for serve: 400 unless the operator set GOGC,
	// in which case it is 0 and the runtime's setting stands. Large batches allocate much
	// short-lived memory, and the higher target halves the time spent collecting it.
	GCPercent int
	// RefitInterval, when positive, refits the models once the latest run is that old
	// (CENTRIC_REFIT_INTERVAL, e.g. 24h; default off).
	RefitInterval time.Duration
	// RefreshConnections is how many database connections a model run's full score refresh
	// summarises the customers on at once (CENTRIC_REFRESH_CONNECTIONS, default 2, at most
	// CENTRIC_DB_MAX_CONNS). Match it to the database server's spare cores.
	RefreshConnections int
	// RateLimit is how many requests per second each API key may send on average
	// (CENTRIC_RATE_LIMIT, default 50) unless a key has a limit of its own; 0 turns the default
	// off.
	RateLimit float64
	// RateBurst is how many requests each API key may send at once, the size of its token
	// bucket (CENTRIC_RATE_BURST, default 100).
	RateBurst int
}

// The default rate limit of every API key.
const (
	defaultRateLimit = 50
	defaultRateBurst = 100
)

// defaultGCPercent is serve's garbage collector target when GOGC is not set.
const defaultGCPercent = 400

// Load reads the configuration from getenv (os.Getenv in production) and validates it.
func Load(getenv func(string) string) (Config, error) {
	c := Config{
		Addr:               orDefault(getenv("CENTRIC_ADDR"), ":8080"),
		DatabaseURL:        getenv("DATABASE_URL"),
		DataDir:            getenv("CENTRIC_DATA_DIR"),
		PostgresBinDir:     getenv("CENTRIC_PG_BIN"),
		MaxDBConns:         20,
		ShutdownTimeout:    15 * time.Second,
		RefreshConnections: 2,
		RateLimit:          defaultRateLimit,
		RateBurst:          defaultRateBurst,
	}
	if getenv("GOGC") == "" {
		c.GCPercent = defaultGCPercent
	}
	if c.DataDir == "" {
		dir, err := defaultDataDir(getenv)
		if err != nil {
			return Config{}, err
		}
		c.DataDir = dir
	}
	if v := getenv("CENTRIC_DB_MAX_CONNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return Config{}, fmt.Errorf("CENTRIC_DB_MAX_CONNS=%q: want a whole number from 1 to 1000", v)
		}
		c.MaxDBConns = n
	}
	if v := getenv("CENTRIC_REFRESH_CONNECTIONS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > c.MaxDBConns {
			return Config{}, fmt.Errorf("CENTRIC_REFRESH_CONNECTIONS=%q: want a whole number from 1 to CENTRIC_DB_MAX_CONNS (%d)", v, c.MaxDBConns)
		}
		c.RefreshConnections = n
	}
	if v := getenv("CENTRIC_SHUTDOWN_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return Config{}, fmt.Errorf("CENTRIC_SHUTDOWN_TIMEOUT=%q: want a positive duration such as 15s", v)
		}
		c.ShutdownTimeout = d
	}
	if v := getenv("CENTRIC_REFIT_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute {
			return Config{}, fmt.Errorf("CENTRIC_REFIT_INTERVAL=%q: want a duration of at least 1m such as 24h", v)
		}
		c.RefitInterval = d
	}
	if v := getenv("CENTRIC_RATE_LIMIT"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(r) || r < 0 || r > 1e6 {
			return Config{}, fmt.Errorf("CENTRIC_RATE_LIMIT=%q: want requests per second per API key from 0 (off) to 1000000, such as 50 or 0.5", v)
		}
		c.RateLimit = r
	}
	if v := getenv("CENTRIC_RATE_BURST"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000000 {
			return Config{}, fmt.Errorf("CENTRIC_RATE_BURST=%q: want a whole number of requests from 1 to 1000000", v)
		}
		c.RateBurst = n
	}
	if v := getenv("CENTRIC_LOG_LEVEL"); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(strings.ToUpper(v))); err != nil {
			return Config{}, fmt.Errorf("CENTRIC_LOG_LEVEL=%q: want debug, info, warn or error", v)
		}
	}
	return c, nil
}

// defaultDataDir is centric/ under the user's data directory ($XDG_DATA_HOME or ~/.local/share).
func defaultDataDir(getenv func(string) string) (string, error) {
	if dir := getenv("XDG_DATA_HOME"); dir != "" {
		return filepath.Join(dir, "centric"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find a data directory (set CENTRIC_DATA_DIR): %w", err)
	}
	return filepath.Join(home, ".local", "share", "centric"), nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
