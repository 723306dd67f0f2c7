//! The result model: what a run and a comparison measured, and the figures computed from it.
//!
//! It sits below both the code that measures ([`experiment`](crate::experiment) fills it) and the code
//! that renders ([`report`](crate::report) turns it into tables, Markdown, JSON, `.hgrm` and SVG),
//! so neither has to know the other. It uses only [`measure`](crate::measure),
//! [`order`](crate::order), [`variant`](crate::variant) and [`placement`](crate::placement).
//!
//! - [`run`]: one session's results ([`RunReport`]) and the `run --json` shape.
//! - [`fairness`]: Jain's index, the barging rate, the longest wait of one run.
//! - [`opportunity`]: lock opportunity (hold + idle time, SCL) and its Jain index, CPU shares.
//! - [`early_end`]: a run that stopped before its rounds, why, and how far it got.
//! - [`summary`]: one run's combined figures, and the median, interval and range over repeats.
//! - [`interval`]: the interval for a median from two of its repeats (order statistics).
//! - [`rank_test`]: whether two runs' repeats differ beyond their scatter (Mann–Whitney).
//! - [`compare`]: everything a `compare` run measured so far ([`CompareReport`]).
//! - [`cell_opportunity`]: lock opportunity per `compare` cell and contender, over the repeats.
//! - [`sweep`]: the same cells at several contender counts (`compare --contenders 2,4,…`), and
//!   what lockfair itself cost at each.
//! - [`machine`]: the machine the numbers came from.
//! - [`holder_death`]: what the holder-death experiment found (`crash`, `compare --crash`).
//! - [`kernel`]: what the kernel recorded (`--kernel-trace`): its counts and a timeline.
//! - [`baseline`]: this run against an earlier one (`compare --baseline`).

pub mod baseline;
pub mod cell_opportunity;
pub mod claims;
pub mod compare;
pub mod early_end;
pub mod fairness;
pub mod holder_death;
pub mod interval;
pub mod kernel;
pub mod machine;
pub mod opportunity;
pub mod rank_test;
pub mod run;
pub mod summary;
pub mod sweep;
pub mod what_to_use;

pub use baseline::{Baseline, BaselineComparison};
pub use compare::{CompareReport, Contender, Failure, HistKey, Metric, RunRecord, Skipped};
pub use early_end::{Cut, EarlyEnd};
pub use fairness::jain_index;
pub use machine::Machine;
pub use opportunity::Opportunity;
pub use run::{ContenderJson, RunJson, RunReport};
pub use summary::{CellMetrics, OrderFigures, OrderSpread, Spread, SummaryRow, summarize};
pub use what_to_use::{Recommendation, UseRow, WhatToUse, what_to_use};
