package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/centric-crm/centric/internal/app"
	"github.com/centric-crm/centric/internal/config"
	"github.com/centric-crm/centric/internal/crm"
	"github.com/centric-crm/centric/internal/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestKeysCreateWithRoot issues, lists and revokes keys through the CLI, one confined to a
// distributor's subtree with -root.
func TestKeysCreateWithRoot(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	a, err := app.Open(ctx, config.Config{DatabaseURL: dsn, MaxDBConns: 2}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	dist, err := a.Customers.Create(ctx, crm.Scope{}, crm.Customer{Kind: crm.KindBusiness})
	if err != nil {
		t.Fatal(err)
	}
	consumer, err := a.Customers.Create(ctx, crm.Scope{}, crm.Customer{Kind: crm.KindConsumer})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string {
		return map[string]string{"DATABASE_URL": dsn, "CENTRIC_DB_MAX_CONNS": "2", "XDG_DATA_HOME": t.TempDir()}[k]
	}
	centric := func(args ...string) (string, error) {
		var out, errs bytes.Buffer
		err := run(ctx, args, &out, &errs, getenv)
		return out.String(), err
	}

	out, err := centric("keys", "create", "-root", dist.ID.String(), "-rate", "2.5", "-burst", "20", "northwind sync", "customers:read", "transactions:write")
	if err != nil {
		t.Fatalf("keys create -root: %v", err)
	}
	id, _, _ := strings.Cut(strings.TrimPrefix(out, "id: "), "\n")
	if _, err := uuid.Parse(id); err != nil || !strings.Contains(out, "key: ck_") {
		t.Fatalf("keys create printed %q", out)
	}
	list, err := centric("keys", "list")
	if err != nil {
		t.Fatal(err)
	}
	var row string
	for _, line := range strings.Split(list, "\n") {
		if strings.HasPrefix(line, id) {
			row = line
		}
	}
	if fields := strings.Fields(row); len(fields) != 9 || fields[1] != "northwind" || fields[4] != "customers:read,transactions:write" || fields[5] != dist.ID.String() || fields[6] != "2.5/s,burst=20" {
		t.Errorf("keys list row = %q, want the key with its root and rate limit", row)
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"keys", "create", "-root", "nope", "x", "admin"}, `-root "nope" is not a customer id`},
		{[]string{"keys", "create", "-root", consumer.ID.String(), "x", "admin"}, "must be a business account"},
		{[]string{"keys", "create", "-root", uuid.NewString(), "x", "admin"}, "names no live customer"},
		{[]string{"keys", "create", "-root", dist.ID.String(), "x"}, "want [-root ID] [-rate N -burst N] a name and at least one permission"},
		{[]string{"keys", "create", "-rate", "5", "x", "admin"}, "/rate_limit/burst: must be from 1 to 1000000"},
	} {
		if _, err := centric(bad.args...); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("centric %v: error %v, want one saying %q", bad.args, err, bad.want)
		}
	}
	if out, err := centric("keys", "revoke", id); err != nil || out != "revoked "+id+"\n" {
		t.Errorf("keys revoke: %q, %v", out, err)
	}
}
