//! The network-namespace end-to-end suite's harness (issue #7): every global replica, zone,
//! OpenBao and mosaic-dp agent in a network namespace of its own, linked through one bridge,
//! with faults (link cut, address blocks, loss, delay) and process control (kill -9, SIGTERM,
//! restart). Linux only, run as root; see `e2e/README.md`.
//!
//! * [`net`]: namespaces, bridge, faults, processes, clean-up.
//! * [`relay`]: the delaying TCP relay (`mosaic-netns-relay`) used when `tc netem` is missing.
//! * [`relay_node`]: a relay process on a node of its own, with the delay a test sets.
//! * [`lincheck`]: three globals alone, for the linearizability scenarios (workload, faults,
//!   verdicts).
//! * [`mosaic`]: a Mosaic deployment on a [`net::Net`]: OpenBao with the seed-000 set-up, three
//!   globals, two zones, agents, and what the scenarios read from them.

pub mod lincheck;
pub mod mosaic;
pub mod net;
pub mod relay;
pub mod relay_node;

pub use mosaic::{Agent, CertInfo, KdsPath, Mosaic, Options};
pub use net::{Net, Node};
