//! One connection session.

pub(crate) mod queue;
