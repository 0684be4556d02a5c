//! Connection and subscription JWT verification as Centrifugo does it.
