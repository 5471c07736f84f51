//! The shipped model's files (`demo/model`, which the product reads through `t2v-demo`) agree
//! with the trainer's definitions: they cannot drift apart when either changes.

use t2v_demo_trainer::configs::Preset;
use t2v_demo_trainer::{vocab, world};

#[test]
fn the_shipped_vocabulary_is_the_worlds_caption_words() {
    assert_eq!(t2v_demo::vocabulary(), vocab::vocabulary());
    assert_eq!(vocab::vocabulary(), world::caption_words());
}

#[test]
fn the_shipped_tokenizer_is_the_one_the_trainer_builds() {
    let dir = tempfile::tempdir().unwrap();
    let built = dir.path().join("tokenizer.json");
    vocab::save_tokenizer(&built).unwrap();
    let read = |path: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let shipped = t2v_demo::shipped::bundled_model_dir().join("tokenizer/tokenizer.json");
    assert_eq!(read(&shipped), read(&built));
}

#[test]
fn the_shipped_description_and_settings_are_the_full_presets() {
    assert_eq!(t2v_demo::shipped::capabilities(), world::capabilities());
    assert_eq!(t2v_demo::recommended_settings(), Preset::full().settings);
}

#[test]
fn the_export_writes_the_shipped_settings_file() {
    let dir = tempfile::tempdir().unwrap();
    t2v_demo_trainer::export::write_settings(dir.path(), &Preset::full().settings).unwrap();
    let name = t2v_demo::SETTINGS_FILE;
    let shipped = t2v_demo::shipped::bundled_model_dir().join(name);
    assert_eq!(
        std::fs::read_to_string(dir.path().join(name)).unwrap(),
        std::fs::read_to_string(shipped).unwrap()
    );
    let smoke = Preset::smoke().settings;
    t2v_demo_trainer::export::write_settings(dir.path(), &smoke).unwrap();
    assert_eq!(t2v_demo::shipped::settings_in(dir.path()).unwrap(), smoke);
}
