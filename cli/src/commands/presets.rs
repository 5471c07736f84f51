//! `t2v presets`: the style presets and tags `--style`, `--styles` and `--tag` accept, and the
//! files they were read from.

use super::{bad_input, Failure};
use clap::Args;
use t2v_presets::{self as presets, Presets};

#[derive(Args)]
pub struct PresetsArgs {
    /// Print as JSON (the format of a presets file, with every entry merged).
    #[arg(long)]
    json: bool,
}

pub fn run(args: PresetsArgs) -> Result<(), Failure> {
    let p = Presets::load().map_err(|e| bad_input(e.to_string()))?;
    if args.json {
        let entries = |list: &[presets::Preset]| -> Vec<serde_json::Value> {
            list.iter()
                .map(|e| match &e.sampling {
                    Some(s) => {
                        serde_json::json!({ "name": e.name, "append": e.append, "sampling": s })
                    }
                    None => serde_json::json!({ "name": e.name, "append": e.append }),
                })
                .collect()
        };
        let groups: Vec<serde_json::Value> = p
            .tag_groups
            .iter()
            .map(|g| serde_json::json!({ "group": g.group, "tags": entries(&g.tags) }))
            .collect();
        let doc = serde_json::json!({ "format": presets::FORMAT, "styles": entries(&p.styles), "tag_groups": groups });
        println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
        return Ok(());
    }
    let width = p
        .styles
        .iter()
        .chain(p.tag_groups.iter().flat_map(|g| &g.tags))
        .map(|e| e.name.len())
        .max()
        .unwrap_or(0);
    println!("styles (--style NAME, --styles A,B,C):");
    for s in &p.styles {
        match &s.sampling {
            Some(sampling) => println!("  {:width$}  {} [{sampling}]", s.name, s.append),
            None => println!("  {:width$}  {}", s.name, s.append),
        }
    }
    for g in &p.tag_groups {
        println!("\ntags: {} (--tag NAME, repeatable):", g.group);
        for t in &g.tags {
            println!("  {:width$}  {}", t.name, t.append);
        }
    }
    println!("\nread from: {}", p.sources.join(", "));
    match presets::user_presets_path() {
        Some(path) => println!(
            "add your own in {} or a file named by ${}",
            path.display(),
            presets::PRESETS_ENV
        ),
        None => println!("add your own in a file named by ${}", presets::PRESETS_ENV),
    }
    Ok(())
}
