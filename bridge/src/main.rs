//! `t2v`: text (and image) to video from the command line. Thin glue: the commands live in
//! `cli/`, the work in the `t2v_bridge` library.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
