// Package btyd implements customer-base analysis models of the
// "buy till you die" family for non-contractual and contractual settings,
// with maximum-likelihood fitting, per-customer scoring, customer lifetime
// value and simulation.
//
// Models and references:
//
//   - BG/NBD: Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005), "Counting
//     your customers the easy way: an alternative to the Pareto/NBD model",
//     Marketing Science 24(2), 275–284. See [BGNBD].
//   - MBG/NBD: Batislam, E. P., Denizel, M. & Filiztekin, A. (2007),
//     "Empirical validation and comparison of models for customer base
//     analysis", International Journal of Research in Marketing 24(3),
//     201–209. Unlike BG/NBD it lets one-purchase customers be inactive. See
//     [MBGNBD].
//   - Gamma-Gamma spend model: Fader, P. S. & Hardie, B. G. S. (2013), "The
//     Gamma-Gamma model of monetary value" (note), with Fader, Hardie & Lee
//     (2005), "RFM and CLV: using iso-value curves for customer base
//     analysis", Journal of Marketing Research 42(4). See [GammaGamma].
//   - Shifted-beta-geometric retention: Fader, P. S. & Hardie, B. G. S.
//     (2007), "How to project customer retention", Journal of Interactive
//     Marketing 21(1), 76–90; discounted expected residual lifetime from
//     Fader & Hardie (2010), "Customer-base valuation in a contractual
//     setting: the perils of ignoring heterogeneity", Marketing Science
//     29(1). See [ShiftedBetaGeometric].
//
// Inputs are per-customer summaries ([Summary]: frequency x, recency t_x, T
// and mean repeat spend), usually built with package rfm or in SQL, measured
// in an explicit time unit ([rfm.TimeUnit]). Fits run on distinct rows with
// counts ([Data], [Compress]), so their cost depends on the number of distinct
// (x, t_x, T) rows, not on the number of customers. Likelihoods are computed
// in log space with analytic gradients; the optimisation runs on log
// parameters with time rescaled by the largest T, falls back to a second
// optimiser when the first fails, and reports [Diagnostics]. A fit that does
// not converge, or converges to non-finite values, returns a [*FitError]
// instead of parameters.
//
// Scoring one customer with fitted parameters is O(1) and does not allocate.
package btyd
