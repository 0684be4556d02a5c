//! Connections by user and client id; channel subscribers; broadcast.
