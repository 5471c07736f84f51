//! Recently used prompt embeddings (umT5 is expensive and prompts recur: the negative prompt
//! nearly always). Kept on the CPU, so they survive unloading the text encoder.

use candle_core::{DType, Tensor};
use std::collections::VecDeque;

#[derive(PartialEq, Eq, Clone)]
struct Key {
    model: String,
    dtype: DType,
    text: String,
}

pub(crate) struct EmbeddingCache {
    capacity: usize,
    /// Least recently used first.
    entries: VecDeque<(Key, Tensor)>,
}

impl EmbeddingCache {
    pub fn new(capacity: usize) -> Self {
        EmbeddingCache {
            capacity,
            entries: VecDeque::new(),
        }
    }

    pub fn get(&mut self, model: &str, dtype: DType, text: &str) -> Option<Tensor> {
        let i = self
            .entries
            .iter()
            .position(|(k, _)| k.model == model && k.dtype == dtype && k.text == text)?;
        let entry = self.entries.remove(i)?;
        let tensor = entry.1.clone();
        self.entries.push_back(entry);
        Some(tensor)
    }

    pub fn insert(&mut self, model: &str, dtype: DType, text: &str, embeddings: Tensor) {
        if self.capacity == 0 {
            return;
        }
        let key = Key {
            model: model.to_string(),
            dtype,
            text: text.to_string(),
        };
        self.entries.retain(|(k, _)| *k != key);
        while self.entries.len() >= self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back((key, embeddings));
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}
