package rfm

import (
	"fmt"
	"math"
	"strconv"
)

// TimeUnit is a unit of time expressed as a number of days. Recency and T of a
// summary, and every time argument of the models fitted on it, are measured
// in the summary's TimeUnit.
type TimeUnit float64

// The usual time units. A month is an average calendar month of 365.25/12
// days.
const (
	Day   TimeUnit = 1
	Week  TimeUnit = 7
	Month TimeUnit = 365.25 / 12
)

// Days returns the length of the unit in days.
func (u TimeUnit) Days() float64 { return float64(u) }

// String names the unit ("day", "week", "month") or gives its length in days.
func (u TimeUnit) String() string {
	switch u {
	case Day:
		return "day"
	case Week:
		return "week"
	case Month:
		return "month"
	}
	return strconv.FormatFloat(float64(u), 'g', -1, 64) + " days"
}

// Validate reports an error unless the unit is a positive, finite number of
// days.
func (u TimeUnit) Validate() error {
	if !(u > 0) || math.IsInf(float64(u), 0) {
		return fmt.Errorf("time unit must be a positive finite number of days, got %v", float64(u))
	}
	return nil
}
