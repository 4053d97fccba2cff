package config

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load(env(map[string]string{"XDG_DATA_HOME": "/data"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8080" || c.DataDir != "/data/centric" || c.MaxDBConns != 20 || c.ShutdownTimeout != 15*time.Second || c.LogLevel != slog.LevelInfo || c.GCPercent != 400 ||
		c.RateLimit != 50 || c.RateBurst != 100 || c.RefreshConnections != 2 {
		t.Errorf("defaults = %+v", c)
	}
}

func TestLoadOverrides(t *testing.T) {
	t.Parallel()
	c, err := Load(env(map[string]string{
		"CENTRIC_ADDR": "127.0.0.1:9000", "DATABASE_URL": "postgres://x", "CENTRIC_DATA_DIR": "/srv",
		"CENTRIC_DB_MAX_CONNS": "5", "CENTRIC_SHUTDOWN_TIMEOUT": "3s", "CENTRIC_LOG_LEVEL": "debug", "GOGC": "100",
		"CENTRIC_REFRESH_CONNECTIONS": "4",
		"CENTRIC_RATE_LIMIT":          "0.5", "CENTRIC_RATE_BURST": "3",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:9000" || c.DatabaseURL != "postgres://x" || c.DataDir != "/srv" || c.MaxDBConns != 5 ||
		c.ShutdownTimeout != 3*time.Second || c.LogLevel != slog.LevelDebug || c.GCPercent != 0 ||
		c.RateLimit != 0.5 || c.RateBurst != 3 || c.RefreshConnections != 4 {
		t.Errorf("overrides = %+v", c)
	}
}

func TestLoadRejectsBadValues(t *testing.T) {
	t.Parallel()
	for name, value := range map[string]string{
		"CENTRIC_DB_MAX_CONNS": "zero", "CENTRIC_SHUTDOWN_TIMEOUT": "-1s", "CENTRIC_LOG_LEVEL": "loud",
		"CENTRIC_REFRESH_CONNECTIONS": "21",
		"CENTRIC_RATE_LIMIT":          "-1", "CENTRIC_RATE_BURST": "0",
	} {
		_, err := Load(env(map[string]string{name: value, "XDG_DATA_HOME": "/data"}))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("Load(%s=%q) error = %v, want one naming %s", name, value, err, name)
		}
	}
}
