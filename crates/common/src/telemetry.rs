//! Tracing set-up shared by the binaries.
