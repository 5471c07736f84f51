//! `t2v`: text (and image) to video from the command line. Thin glue: the commands live in the
//! `t2v_cli` library, the work in the `t2v_bridge` generation service.

fn main() -> std::process::ExitCode {
    t2v_cli::main()
}
