//! Mutation fuzzing with proptest, shared by the fuzz tests of every parser of user files.
//!
//! Inputs are valid seed files mutated (bit flips, truncations, 64-bit lengths overwritten with
//! huge values, spliced garbage, numbers in a text replaced by hostile ones) and plain random
//! bytes. A parser must return an error, never panic (proptest reports a panic with the shrunk
//! input), and never size a buffer from what a header claims: the test binary's allocator
//! records the largest single allocation made while an input is parsed.
#![allow(dead_code)]

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The largest single allocation a parser may make for one (small) fuzzed input.
pub const ALLOCATION_LIMIT: usize = 256 << 20;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

/// The system allocator, recording per thread the largest allocation asked for.
pub struct RecordingAllocator;

// SAFETY: every call is forwarded unchanged to the system allocator; the bookkeeping touches
// only a const-initialised thread-local `Cell` (no allocation, no re-entry).
unsafe impl GlobalAlloc for RecordingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

fn record(size: usize) {
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

/// Installs [`RecordingAllocator`] in a fuzz test binary.
#[macro_export]
macro_rules! record_allocations {
    () => {
        #[global_allocator]
        static ALLOCATOR: fuzz_support::RecordingAllocator = fuzz_support::RecordingAllocator;
    };
}

#[derive(Debug, Clone)]
pub enum Mutation {
    FlipBit {
        at: Index,
        bit: u8,
    },
    Truncate {
        at: Index,
    },
    /// A little-endian u64 written over the bytes at `at` (a safetensors header length, a zip
    /// size field, ...).
    PutU64 {
        at: Index,
        value: u64,
    },
    Splice {
        at: Index,
        bytes: Vec<u8>,
    },
    /// The `which`-th run of digits in the input replaced by `value`.
    Number {
        which: Index,
        value: &'static str,
    },
}

const HOSTILE_NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1152921504606846976",
    "18446744073709551615",
    "18446744073709551616",
    "1e400",
    "4294967297",
    "99999999999",
];

fn huge_or_small() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(1u64 << 60),
        Just(u64::MAX),
        Just(u64::MAX / 2),
        Just(1u64 << 32),
        0u64..4096,
        any::<u64>(),
    ]
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit { at, bit }),
        2 => any::<Index>().prop_map(|at| Mutation::Truncate { at }),
        2 => (any::<Index>(), huge_or_small()).prop_map(|(at, value)| Mutation::PutU64 { at, value }),
        1 => (any::<Index>(), proptest::collection::vec(any::<u8>(), 1..32))
            .prop_map(|(at, bytes)| Mutation::Splice { at, bytes }),
        3 => (any::<Index>(), proptest::sample::select(HOSTILE_NUMBERS))
            .prop_map(|(which, value)| Mutation::Number { which, value }),
    ]
}

fn digit_runs(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            runs.push((start, i));
        } else {
            i += 1;
        }
    }
    runs
}

pub fn apply(mut bytes: Vec<u8>, m: &Mutation) -> Vec<u8> {
    if bytes.is_empty() {
        return bytes;
    }
    match m {
        Mutation::FlipBit { at, bit } => {
            let i = at.index(bytes.len());
            bytes[i] ^= 1 << bit;
        }
        Mutation::Truncate { at } => bytes.truncate(at.index(bytes.len())),
        Mutation::PutU64 { at, value } => {
            let i = at.index(bytes.len());
            for (j, b) in value.to_le_bytes().iter().enumerate() {
                if let Some(slot) = bytes.get_mut(i + j) {
                    *slot = *b;
                }
            }
        }
        Mutation::Splice { at, bytes: new } => {
            let i = at.index(bytes.len());
            bytes.splice(i..i, new.iter().copied());
        }
        Mutation::Number { which, value } => {
            let runs = digit_runs(&bytes);
            if !runs.is_empty() {
                let (start, end) = runs[which.index(runs.len())];
                bytes.splice(start..end, value.bytes());
            }
        }
    }
    bytes
}

/// `seed` with one to four mutations, or (one time in four) random bytes.
pub fn hostile(seed: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => proptest::collection::vec(mutation(), 1..5)
            .prop_map(move |ms| ms.iter().fold(seed.clone(), apply)),
        1 => proptest::collection::vec(any::<u8>(), 0..2048),
    ]
}

/// Runs `parse` on `cases` hostile inputs; prints how many were tried and how many parsed.
/// `parse` returns whether the input was accepted.
pub fn fuzz(
    name: &str,
    cases: u32,
    inputs: impl Strategy<Value = Vec<u8>>,
    parse: impl Fn(&[u8]) -> bool,
) {
    let mut config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    // The same inputs on every run, so CI's verdict does not depend on luck;
    // PROPTEST_RNG_SEED=N explores others.
    if matches!(config.rng_seed, RngSeed::Random) {
        config.rng_seed = RngSeed::Fixed(0x7432_7620_6675_7a7a);
    }
    let mut runner = TestRunner::new(config);
    let tried = Cell::new(0usize);
    let accepted = Cell::new(0usize);
    let largest = Cell::new(0usize);
    let result = runner.run(&inputs, |input| {
        tried.set(tried.get() + 1);
        LARGEST.with(|l| l.set(0));
        let ok = parse(&input);
        let peak = LARGEST.with(|l| l.get());
        largest.set(largest.get().max(peak));
        if ok {
            accepted.set(accepted.get() + 1);
        }
        if peak > ALLOCATION_LIMIT {
            return Err(TestCaseError::fail(format!(
                "a {}-byte input made a {peak}-byte allocation",
                input.len()
            )));
        }
        Ok(())
    });
    println!(
        "fuzz {name}: {} inputs tried, {} accepted, the rest refused with an error, no panic; largest single allocation {} bytes",
        tried.get(),
        accepted.get(),
        largest.get()
    );
    if let Err(e) = result {
        panic!("fuzz {name}: {e}");
    }
}

/// A regression input: refused, without an allocation over [`ALLOCATION_LIMIT`].
pub fn assert_refused(what: &str, parse: impl FnOnce() -> bool) {
    LARGEST.with(|l| l.set(0));
    let accepted = parse();
    let peak = LARGEST.with(|l| l.get());
    assert!(!accepted, "{what}: accepted");
    assert!(peak <= ALLOCATION_LIMIT, "{what}: a {peak}-byte allocation");
}
