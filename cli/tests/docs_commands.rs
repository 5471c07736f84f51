//! Every `t2v` command line in the README and docs/*.md runs, on the demo model.
//!
//! Commands are taken from the ```sh blocks (continuation lines joined, `#` comments and a
//! trailing `...` dropped) in each of their spellings: `t2v ...`, `target/release/t2v ...` and
//! `cargo run --release -p t2v-cli -- ...`. Synopses with `[optional]` parts are not
//! commands and are skipped. To keep CI fast and runnable without real weights, each command
//! runs in a scratch folder with these changes: a `--model` folder that does not exist here (the
//! real weights) is dropped, so the demo model runs instead; `--steps` is at most 2; the
//! real-size benchmark runs at the tiny size; an `--upscaler` file that is not here (one the
//! user downloads) is the tiny random-weight Real-ESRGAN fixture; a `--fast-decoder` file that is
//! not here (`taew2_2`, for the real model's latent space) is dropped, so `--decoder fast` uses
//! the demo model's own tiny decoder. Everything else (the flags, the outputs they name, an
//! `--upscale` with no `--upscaler`, which uses the demo model's own upscaler) is as written, and
//! each command must succeed.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn doc_files() -> Vec<PathBuf> {
    let root = workspace();
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// The shell commands of a Markdown file's ```sh blocks, continuation lines joined.
fn shell_commands(markdown: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut in_block = false;
    let mut current = String::new();
    for line in markdown.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_block = !in_block && (trimmed == "```sh" || trimmed == "```bash");
            current.clear();
            continue;
        }
        if !in_block {
            continue;
        }
        let code = strip_comment(line);
        let code = code.trim_end();
        if let Some(head) = code.strip_suffix('\\') {
            current.push_str(head.trim());
            current.push(' ');
            continue;
        }
        current.push_str(code.trim());
        let command = current.trim().to_string();
        if !command.is_empty() {
            commands.push(command);
        }
        current.clear();
    }
    commands
}

/// The line without a `#` comment outside quotes.
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    for (i, c) in line.char_indices() {
        match (c, quote) {
            ('"' | '\'', None) => quote = Some(c),
            (q, Some(open)) if q == open => quote = None,
            ('#', None) if i == 0 || line[..i].ends_with(' ') => return &line[..i],
            _ => {}
        }
    }
    line
}

/// Splits a command line into words, honouring double and single quotes.
fn words(command: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut in_word = false;
    for c in command.chars() {
        match (c, quote) {
            ('"' | '\'', None) => {
                quote = Some(c);
                in_word = true;
            }
            (q, Some(open)) if q == open => quote = None,
            (' ', None) => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                }
                in_word = false;
            }
            _ => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(word);
    }
    out
}

/// The `t2v` arguments of a command, or `None` when it does not run `t2v`.
fn t2v_arguments(command: &str) -> Option<Vec<String>> {
    let w = words(command);
    let start = if w
        .first()
        .is_some_and(|p| p == "t2v" || p.ends_with("/release/t2v"))
    {
        1
    } else if w.starts_with(&["cargo".into(), "run".into()]) && w.iter().any(|a| a == "t2v-cli") {
        let end = w.iter().position(|a| a == "--")?;
        if w[..end].iter().any(|a| a == "--example") {
            return None; // One of the crate's examples, not the t2v binary.
        }
        end + 1
    } else {
        return None;
    };
    let mut args: Vec<String> = w[start..].to_vec();
    if args.last().is_some_and(|a| a == "...") {
        args.pop();
    }
    Some(args)
}

/// The changes listed in the module documentation (`demo`: the demo model to use).
fn for_ci(mut args: Vec<String>, demo: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let (flag, value) = (args[i].clone(), args.get(i + 1).cloned());
        match (flag.as_str(), value) {
            ("--model", Some(v)) if v.trim_end_matches('/') == "demo/model" => {
                out.extend(["--model".to_string(), demo.display().to_string()]);
                i += 2;
            }
            ("--model", Some(v)) if !workspace().join(&v).exists() && !Path::new(&v).exists() => {
                i += 2
            }
            ("--steps", Some(v)) => {
                let steps = v.parse::<usize>().map_or(2, |s| s.min(2));
                out.extend(["--steps".to_string(), steps.to_string()]);
                i += 2;
            }
            ("--upscaler", Some(v))
                if !workspace().join(&v).exists() && !Path::new(&v).exists() =>
            {
                let fixture = workspace().join("models/tests/fixtures/upscale/compact_x4.pth");
                out.extend(["--upscaler".to_string(), fixture.display().to_string()]);
                i += 2;
            }
            ("--fast-decoder", Some(v))
                if !workspace().join(&v).exists() && !Path::new(&v).exists() =>
            {
                i += 2;
            }
            ("--model-size", Some(_)) => {
                out.extend(["--model-size".to_string(), "tiny".to_string()]);
                i += 2;
            }
            _ => {
                out.push(std::mem::take(&mut args[i]));
                i += 1;
            }
        }
    }
    if out.first().is_some_and(|c| c == "generate") && !out.iter().any(|a| a == "--steps") {
        out.extend(["--steps".to_string(), "2".to_string()]);
    }
    out
}

/// The shipped demo model.
fn demo_model() -> PathBuf {
    let demo = workspace().join("demo/model");
    assert!(
        demo.join("model_index.json").is_file(),
        "the trained demo model is committed in {}",
        demo.display()
    );
    demo
}

#[test]
fn every_t2v_command_in_the_docs_runs_on_the_demo_model() {
    let root = workspace();
    let demo = demo_model();
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("docs-commands-{}", std::process::id()));
    let mut ran = Vec::new();
    for file in doc_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for command in shell_commands(&text) {
            let Some(args) = t2v_arguments(&command) else {
                continue;
            };
            if args.iter().any(|a| a.starts_with('[')) {
                continue; // a synopsis, not a command
            }
            let args = for_ci(args, &demo);
            let dir = scratch.join(ran.len().to_string());
            std::fs::create_dir_all(&dir).unwrap();
            // Paths in the docs are relative to the workspace (models, fixtures) or outputs:
            // the workspace's folders are linked into the scratch folder.
            for name in ["models", "demo", "presets", "docs"] {
                #[cfg(unix)]
                let _ = std::os::unix::fs::symlink(root.join(name), dir.join(name));
            }
            let output = Command::new(env!("CARGO_BIN_EXE_t2v"))
                .args(&args)
                .current_dir(&dir)
                .env("T2V_CACHE_DIR", dir.join("cache"))
                .env("T2V_DEMO_MODEL", &demo)
                .output()
                .expect("t2v runs");
            assert!(
                output.status.success(),
                "{}: `{command}` (run as t2v {args:?}) failed:\n{}",
                file.display(),
                String::from_utf8_lossy(&output.stderr)
            );
            ran.push(format!(
                "{}: t2v {}",
                file.file_name().unwrap().to_string_lossy(),
                args.join(" ")
            ));
        }
    }
    println!("{}", ran.join("\n"));
    // The README's first command, the CLI reference's example and the presets examples at least.
    assert!(ran.len() >= 5, "{ran:#?}");
    assert!(
        ran.iter().any(|r| r.starts_with("README.md: t2v generate")),
        "{ran:#?}"
    );
    std::fs::remove_dir_all(&scratch).ok();
}

/// Regression: after the command line moved out of the service library, a doc that still
/// builds or runs `t2v` from `t2v-bridge` would fail for whoever follows it.
#[test]
fn no_doc_builds_t2v_from_the_service_library() {
    for file in doc_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            assert!(
                !line.contains("-p t2v-bridge"),
                "{}:{}: `{line}`: the t2v binary is in t2v-cli",
                file.display(),
                n + 1
            );
        }
    }
}

#[test]
fn commands_are_read_as_a_shell_would() {
    let md = "text\n```sh\nt2v generate --prompt \"a fox # not a comment\" \\\n    --output out/f.%04d.png   # comment\ncargo build --release\n```\n";
    let commands = shell_commands(md);
    assert_eq!(
        commands,
        vec![
            "t2v generate --prompt \"a fox # not a comment\" --output out/f.%04d.png",
            "cargo build --release"
        ]
    );
    assert_eq!(
        t2v_arguments(&commands[0]).unwrap(),
        vec![
            "generate",
            "--prompt",
            "a fox # not a comment",
            "--output",
            "out/f.%04d.png"
        ]
    );
    assert_eq!(t2v_arguments(&commands[1]), None);
    assert_eq!(
        t2v_arguments("cargo run --release -p t2v-cli -- info --model x").unwrap(),
        vec!["info", "--model", "x"]
    );
    assert_eq!(
        t2v_arguments("cargo run --release -p t2v-cli --example upscale_flicker -- --frames x"),
        None,
        "an example of the crate is not the t2v binary"
    );
    assert_eq!(
        t2v_arguments("cargo run --release -p t2v-bridge --bin t2v -- info"),
        None,
        "t2v-bridge is the service library; it has no t2v binary"
    );
    assert_eq!(
        for_ci(
            vec![
                "generate".into(),
                "--model".into(),
                "/models/Wan2.2".into(),
                "--steps".into(),
                "50".into()
            ],
            Path::new("demo/model")
        ),
        vec!["generate", "--steps", "2"]
    );
}
