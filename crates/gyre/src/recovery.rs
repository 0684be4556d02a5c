//! Stream recovery: pure logic deciding what a resubscribing client missed.
