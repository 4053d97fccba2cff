package crm

import (
	"strconv"
	"strings"
)

// ETagOf returns the strong entity tag of a version.
func ETagOf(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// checkIfMatch fails with PreconditionFailed unless ifMatch is empty, "*", or lists c's entity
// tag. As RFC 9110 requires for If-Match, the comparison is strong: a weak tag never matches.
func checkIfMatch(c *Customer, ifMatch string) error {
	ifMatch = strings.TrimSpace(ifMatch)
	if ifMatch == "" || ifMatch == "*" {
		return nil
	}
	want := c.ETag()
	for _, tag := range strings.Split(ifMatch, ",") {
		if strings.TrimSpace(tag) == want {
			return nil
		}
	}
	return Errorf(CodePreconditionFailed, "The customer has changed: it is at version %s, not %s. Read it again and retry with the new ETag.", want, ifMatch)
}
