package pgtest

import "testing"

func TestWithDatabase(t *testing.T) {
	for _, tc := range []struct{ dsn, want string }{
		{"postgres://u:p%40ss@db:5432/postgres?sslmode=disable", "postgres://u:p%40ss@db:5432/test_1?sslmode=disable"},
		{"postgresql://localhost", "postgresql://localhost/test_1"},
		{"host=db user=u dbname=postgres", "host=db user=u dbname=postgres dbname='test_1'"},
	} {
		got, err := withDatabase(tc.dsn, "test_1")
		if err != nil || got != tc.want {
			t.Errorf("withDatabase(%q) = %q, %v; want %q", tc.dsn, got, err, tc.want)
		}
	}
}
