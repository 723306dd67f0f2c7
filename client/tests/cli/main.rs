//! Integration tests: they start the real `lockfair-server` and `lockfair-client` binaries.
//! One test binary, one module per feature.

mod bench;
mod compare;
mod compat;
mod contenders;
mod garbage;
mod hostile;
mod liveness;
mod matrix;
mod probe;
mod run;
mod uring;
mod util;
mod variants;
