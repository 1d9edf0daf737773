//! Load tests (see below).
