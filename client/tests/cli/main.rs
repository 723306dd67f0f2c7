//! Integration tests: they start the real `lockfair-server` and `lockfair-client` binaries.
//! One test binary, one module per feature.

mod baseline;
mod bench;
mod binaries;
mod compare;
mod compare_crash;
mod compat;
mod contenders;
mod crash;
mod demo;
mod docs_links;
mod figures;
mod garbage;
mod handoff_locks;
mod hostile;
mod ktrace;
mod layout;
mod liveness;
mod manpages;
mod matrix;
mod out_dir;
mod pipes;
mod plot_labels;
mod probe;
mod real_locks;
mod report_html;
mod robust_attack;
mod run;
mod server_limits;
mod socket_files;
mod sweep;
mod unequal;
mod uring;
mod util;
mod variants;
mod versions;
