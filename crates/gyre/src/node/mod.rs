//! The Node.
