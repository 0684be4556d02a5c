//! Loader tests: layering, env mapping, warnings and validation.
