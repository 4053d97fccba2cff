// Package analytics turns the transaction ledger into customer-centric numbers: it runs the
// fits of the purchase and spend models, keeps every customer's scores current, and answers
// the retention, concentration, acquisition and what-if questions. The statistics live in
// pkg/btyd and pkg/rfm; this package reads the data, calls them and stores the results.
package analytics
