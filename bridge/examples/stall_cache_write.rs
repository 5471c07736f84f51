//! Test helper for the crash-safety test: generates a tiny clip, starts writing it into the clip
//! cache, prints `WRITING <folder>` after a few files and then stalls, so that the test can kill
//! it with SIGKILL half-way through the entry.
//!
//! Usage: stall_cache_write CACHE_DIR MODEL_DIR PROMPT

use std::io::Write;
use t2v_bridge::{ClipCache, GenerationParams, ModelSpec, Request, Service, ServiceConfig};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (cache_dir, model, prompt) = (&args[1], &args[2], &args[3]);
    let params = GenerationParams {
        prompt: prompt.clone(),
        width: 64,
        height: 64,
        frames: 9,
        steps: 2,
        ..Default::default()
    };
    let request = Request::new(ModelSpec::folder(model), params);
    let service = Service::new(ServiceConfig {
        use_disk_cache: false,
        ..Default::default()
    })
    .expect("service");
    let clip = service
        .submit(request)
        .expect("submit")
        .wait()
        .expect("generate");
    let cache = ClipCache::open(cache_dir, u64::MAX).expect("cache");
    let latents = clip
        .latents
        .as_ref()
        .map(|l| l.to_tensor(&candle_core::Device::Cpu).expect("latents"));
    let mut written = 0;
    let _ = cache.store_observed(
        &clip.key,
        &clip.frames,
        latents.as_ref(),
        &clip.metadata,
        &mut |path| {
            written += 1;
            if written == 3 {
                println!("WRITING {}", path.parent().unwrap().display());
                std::io::stdout().flush().unwrap();
                std::thread::sleep(std::time::Duration::from_secs(600));
            }
        },
    );
}
