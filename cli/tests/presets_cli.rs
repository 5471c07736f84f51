//! `t2v generate --style/--tag/--styles` and `t2v presets` on the tiny model: the prompts the
//! presets make, one clip per style with the same seed, and the contact sheet.

mod common;

use common::fixtures;
use std::path::Path;
use std::process::{Command, Output};

/// `t2v` with its own cache and config folders, so neither the user's clip cache nor their
/// presets file plays a part.
fn t2v(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_t2v"));
    c.env("T2V_CACHE_DIR", dir.join("cache"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env_remove("T2V_PRESETS");
    c
}

fn generate(dir: &Path, output: &Path, extra: &[&str]) -> Command {
    let mut c = t2v(dir);
    c.arg("generate")
        .arg("--model")
        .arg(fixtures().join("tiny-diffusers"))
        .args([
            "--prompt",
            "a red ball",
            "--width",
            "64",
            "--height",
            "64",
            "--frames",
            "5",
            "--steps",
            "2",
            "--seed",
            "7",
        ])
        .arg("--output")
        .arg(output)
        .args(extra);
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn prompt_in(metadata: &Path) -> String {
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(metadata).unwrap()).unwrap();
    json["prompt"].as_str().unwrap().to_string()
}

fn rgb(path: &Path) -> image::RgbImage {
    image::open(path).unwrap().to_rgb8()
}

#[test]
fn style_and_tags_are_appended_to_the_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out/f.%04d.png");
    let o = generate(
        dir.path(),
        &out,
        &[
            "--style",
            "anime",
            "--tag",
            "golden-hour",
            "--tag",
            "dolly-in",
        ],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let expected = "a red ball, anime style, Studio Ghibli color palette, golden hour sunlight, warm tones, slow dolly in";
    assert_eq!(prompt_in(&dir.path().join("out/f.json")), expected);
    assert!(
        stderr(&o).contains(&format!("prompt: {expected}")),
        "{}",
        stderr(&o)
    );
    assert!(dir.path().join("out/f.0004.png").is_file());
}

#[test]
fn styles_make_one_clip_each_and_a_contact_sheet() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out/f.%04d.png");
    let styles = ["anime", "flat", "cyberpunk"];
    let o = generate(
        dir.path(),
        &out,
        &[
            "--styles",
            "anime,flat,cyberpunk",
            "--tag",
            "static",
            "--no-cache",
        ],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let shipped = t2v_presets::Presets::shipped();
    for style in styles {
        let folder = dir.path().join("out").join(style);
        let expected = format!(
            "a red ball, {}, static camera, locked-off shot",
            shipped.style(style).unwrap().append
        );
        assert_eq!(prompt_in(&folder.join("f.json")), expected);
        for i in 0..5 {
            assert!(
                folder.join(format!("f.{i:04}.png")).is_file(),
                "{style} frame {i}"
            );
        }
    }
    // The same seed: a single --style run gives the same frames.
    let single = dir.path().join("single/f.%04d.png");
    let o = generate(
        dir.path(),
        &single,
        &["--style", "flat", "--tag", "static", "--no-cache"],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        rgb(&dir.path().join("single/f.0003.png")),
        rgb(&dir.path().join("out/flat/f.0003.png"))
    );

    // Rows = styles, columns = the 5 frames (the clip has 5), with a 4-pixel gap.
    let sheet = rgb(&dir.path().join("out/contact-sheet.png"));
    let gap = t2v_cli::contact_sheet::GAP;
    assert_eq!(sheet.dimensions(), (5 * 64 + 6 * gap, 3 * 64 + 4 * gap));
    for (row, style) in styles.iter().enumerate() {
        for col in [0u32, 4] {
            let frame = rgb(&dir.path().join(format!("out/{style}/f.{col:04}.png")));
            let (x0, y0) = (gap + col * (64 + gap), gap + row as u32 * (64 + gap));
            for (x, y) in [(0, 0), (31, 17), (63, 63)] {
                assert_eq!(
                    sheet.get_pixel(x0 + x, y0 + y),
                    frame.get_pixel(x, y),
                    "{style} frame {col} at ({x},{y})"
                );
            }
        }
    }
    assert!(stderr(&o).is_empty() || !stderr(&o).contains("error"));
}

#[test]
fn contact_sheet_path_and_frame_count_can_be_chosen() {
    let dir = tempfile::tempdir().unwrap();
    let sheet = dir.path().join("sheets/cmp.png");
    let o = generate(
        dir.path(),
        &dir.path().join("o/f.%04d.png"),
        &["--styles", "noir,flat", "--sheet-frames", "2"],
    )
    .arg("--contact-sheet")
    .arg(&sheet)
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let gap = t2v_cli::contact_sheet::GAP;
    assert_eq!(
        rgb(&sheet).dimensions(),
        (2 * 64 + 3 * gap, 2 * 64 + 3 * gap)
    );
    assert!(
        stderr(&o).contains("columns: frames [0, 4]"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn unknown_presets_and_bad_files_are_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out/f.%04d.png");
    let o = generate(dir.path(), &out, &["--style", "anim"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("unknown style \"anim\"; known styles: anime"),
        "{}",
        stderr(&o)
    );
    // Nothing was generated: every style is checked first.
    let o = generate(dir.path(), &out, &["--styles", "anime,nope"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!dir.path().join("out/anime").exists());
    let o = generate(dir.path(), &out, &["--styles", "anime,anime"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("listed twice"), "{}", stderr(&o));

    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"format": 1, "styles": [{"name": "My Look", "append": "x"}]}"#,
    )
    .unwrap();
    let o = generate(dir.path(), &out, &["--style", "anime"])
        .env("T2V_PRESETS", &bad)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("bad.json: style name \"My Look\" must be lower case"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn user_presets_extend_the_shipped_ones() {
    let dir = tempfile::tempdir().unwrap();
    // The user config file and $T2V_PRESETS, both read.
    let config = dir.path().join("config/text-to-video");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("prompt-presets.json"),
        r#"{"format": 1, "styles": [{"name": "house", "append": "our house look"}]}"#,
    )
    .unwrap();
    let extra = dir.path().join("extra.json");
    std::fs::write(&extra, r#"{"format": 1, "tag_groups": [{"group": "lighting", "tags": [{"name": "candle", "append": "candlelight"}]}]}"#).unwrap();

    let o = t2v(dir.path())
        .arg("presets")
        .env("T2V_PRESETS", &extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let listing = String::from_utf8_lossy(&o.stdout);
    for expected in [
        "anime",
        "Studio Ghibli",
        "house",
        "our house look",
        "tags: actions",
        "tags: lighting",
        "tags: camera",
        "candle",
        "read from: built-in",
    ] {
        assert!(listing.contains(expected), "{expected}: {listing}");
    }

    let out = dir.path().join("out/f.%04d.png");
    let o = generate(dir.path(), &out, &["--style", "house", "--tag", "candle"])
        .env("T2V_PRESETS", &extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        prompt_in(&dir.path().join("out/f.json")),
        "a red ball, our house look, candlelight"
    );

    let o = t2v(dir.path())
        .args(["presets", "--json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["format"], 1);
    assert!(json["styles"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["name"] == "house"));
}

/// A user style that names a LoRA (next to its presets file) makes what the same words and
/// `--lora` make; a style whose LoRA is missing is bad input naming the file.
#[test]
fn a_style_applies_the_loras_it_names() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("loras")).unwrap();
    let lora = dir.path().join("loras").join("ink.safetensors");
    std::fs::copy(fixtures().join("lora").join("kohya.safetensors"), &lora).unwrap();
    let presets = dir.path().join("presets.json");
    std::fs::write(
        &presets,
        r#"{"format": 1, "styles": [
            {"name": "ink", "append": "ink drawing", "loras": [{"file": "loras/ink.safetensors", "strength": 0.7}]},
            {"name": "ink-words", "append": "ink drawing"},
            {"name": "lost", "append": "lost", "loras": [{"file": "loras/gone.safetensors"}]}]}"#,
    )
    .unwrap();
    let frame = |out: &str, extra: &[&str]| {
        let out = dir.path().join(out).join("f.%04d.png");
        let o = generate(dir.path(), &out, extra)
            .env("T2V_PRESETS", &presets)
            .output()
            .unwrap();
        assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
        rgb(&out.with_file_name("f.0001.png"))
    };
    let styled = frame("styled", &["--style", "ink", "--no-cache"]);
    let by_hand = frame(
        "by-hand",
        &[
            "--style",
            "ink-words",
            "--lora",
            &format!("{}:0.7", lora.display()),
            "--no-cache",
        ],
    );
    let words_only = frame("words", &["--style", "ink-words", "--no-cache"]);
    assert_eq!(styled, by_hand);
    assert_ne!(styled, words_only, "the style's LoRA changes the frames");

    let o = generate(
        dir.path(),
        &dir.path().join("x/f.%04d.png"),
        &["--style", "lost"],
    )
    .env("T2V_PRESETS", &presets)
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("gone.safetensors"), "{}", stderr(&o));
}
