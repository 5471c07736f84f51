//! Samplers against diffusers' `UniPCMultistepScheduler` (flow prediction, bh2, order 2) and
//! `FlowMatchEulerDiscreteScheduler`, with no model involved.

mod common;

use common::*;
use t2v_models::sampling::SamplerKind;

#[test]
fn schedules_match_reference() {
    let meta = json("scheduler.json");
    for (kind, name) in [(SamplerKind::UniPc, "unipc"), (SamplerKind::Euler, "euler")] {
        let schedules = meta["schedules"][name].as_array().expect("schedules");
        assert!(!schedules.is_empty());
        for s in schedules {
            let steps = s["steps"].as_u64().unwrap() as usize;
            let shift = s["shift"].as_f64().unwrap();
            let sampler = kind.build(steps, shift, 0);
            let want_t: Vec<f64> = s["timesteps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let want_s: Vec<f64> = s["sigmas"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            if kind == SamplerKind::UniPc {
                assert_eq!(
                    sampler.timesteps(),
                    want_t.as_slice(),
                    "{name} steps={steps} shift={shift}"
                );
            } else {
                for (a, b) in sampler.timesteps().iter().zip(&want_t) {
                    assert!(
                        (a - b).abs() <= 1e-3,
                        "{name} steps={steps}: timestep {a} vs {b}"
                    );
                }
                assert_eq!(sampler.timesteps().len(), want_t.len());
            }
            assert_eq!(sampler.sigmas().len(), want_s.len());
            for (a, b) in sampler.sigmas().iter().zip(&want_s) {
                assert!(
                    (*a as f64 - b).abs() <= 1e-6,
                    "{name} steps={steps} shift={shift}: sigma {a} vs {b}"
                );
            }
        }
    }
}

#[test]
fn step_chains_match_reference() {
    let meta = json("scheduler.json");
    let fx = load("scheduler.safetensors");
    for (kind, name) in [(SamplerKind::UniPc, "unipc"), (SamplerKind::Euler, "euler")] {
        let chain = &meta["chains"][name];
        let steps = chain["steps"].as_u64().expect("chain steps") as usize;
        let shift = chain["shift"].as_f64().expect("chain shift");
        let mut sampler = kind.build(steps, shift, 0);
        for i in 0..steps {
            let sample = &fx[&format!("{name}.sample.{i}")];
            let out = &fx[&format!("{name}.model_output.{i}")];
            let prev = sampler.step(out, sample).unwrap();
            assert_close(
                &format!("{name} step {i}"),
                &prev,
                &fx[&format!("{name}.prev_sample.{i}")],
                1e-5,
            );
        }
    }
}
