//! Configuration with Centrifugo v6 keys, defaults, file formats, env and flags.
