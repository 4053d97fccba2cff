// Package rfm builds recency-frequency-monetary (RFM) summaries from
// transaction logs and scores customers into RFM quartiles and segments.
//
// The summary follows the conventions of the customer-base-analysis
// literature (Fader, Hardie & Lee 2005, "RFM and CLV: using iso-value curves
// for customer base analysis", Journal of Marketing Research 42(4)) and of the
// Python library lifetimes: purchases on the same calendar day collapse into
// one purchase occasion whose amount is the sum of the day's amounts;
// frequency is the number of repeat occasions (occasions − 1); recency is the
// time from the first to the last occasion; T is the time from the first
// occasion to the end of the observation period; monetary value is the mean
// amount of the repeat occasions (0 when there are none). Times are measured
// in an explicit [TimeUnit].
//
// The scoring follows pymc-marketing's rfm_segments: quartile scores per
// dimension with pandas qcut(q=4, duplicates="drop") semantics and the
// pymc-marketing default segment map, which is configurable.
//
// The Centric service computes the same summaries and quantile edges in SQL;
// this package is the reference implementation and the entry point for library
// users.
package rfm
