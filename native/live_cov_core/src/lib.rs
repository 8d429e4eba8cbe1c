//! LiveCov's pure core, free of any BEAM dependency so `cargo test` exercises it directly.
//! The NIF crate (`live_cov_nif`) is only glue around it.

pub mod baseline;
pub mod error;
pub mod merge;
pub mod snapshot;
pub mod table;
