//! Trial table.
