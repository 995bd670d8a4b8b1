//! Shared helpers of the zone's integration tests.
//!
//! - [`kds_driver`]: `KdsProtocolDriver`, a minimal in-test KDS server the test steers message by
//!   message (not the global's implementation).
//! - [`fixtures`]: wire resources and polling with generous deadlines.
//! - [`mosaic`]: `Mosaic`, a global, its zones and data-plane agents as real processes.

#![allow(dead_code)]

pub mod fixtures;
pub mod kds_driver;
pub mod mosaic;
