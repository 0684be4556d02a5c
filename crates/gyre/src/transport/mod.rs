//! Transports: how connections reach a client session.
