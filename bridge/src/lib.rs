//! The generation service and the `t2v` command line. For now: writing frames to disk and the
//! command-line front end over `t2v-models`.

pub mod frames_out;
