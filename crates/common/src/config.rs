//! Configuration of the global and zone control planes.
