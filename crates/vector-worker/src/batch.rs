//! Planning forward passes: texts from several tasks, grouped by length so
//! each pass wastes little on padding, within a padded-token budget.

use std::time::Duration;

/// Limits of cross-task micro-batching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Padded tokens in one forward pass (texts × longest text).
    pub max_tokens: usize,
    /// Texts in one forward pass, and the collection target of one round.
    pub max_texts: usize,
    /// How long the model thread waits for more requests before it runs
    /// what it has.
    pub max_wait: Duration,
}

/// Groups texts, given their token counts, into forward passes: shortest
/// first, each pass at most `max_texts` texts and `max_tokens` padded
/// tokens (a single text over the budget gets a pass of its own). Returns
/// the text indices of each pass; every index appears exactly once.
pub fn plan_passes(token_counts: &[usize], limits: &BatchLimits) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..token_counts.len()).collect();
    order.sort_by_key(|&i| token_counts[i]);
    let mut passes: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for index in order {
        // Sorted ascending: this text is the longest of the pass so far.
        let padded = (current.len() + 1) * token_counts[index].max(1);
        if !current.is_empty()
            && (current.len() >= limits.max_texts.max(1) || padded > limits.max_tokens)
        {
            passes.push(std::mem::take(&mut current));
        }
        current.push(index);
    }
    if !current.is_empty() {
        passes.push(current);
    }
    passes
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: BatchLimits = BatchLimits {
        max_tokens: 100,
        max_texts: 4,
        max_wait: Duration::ZERO,
    };

    #[test]
    fn every_text_once_sorted_and_within_limits() {
        let counts = [30, 5, 5, 50, 10, 12, 7, 200, 9];
        let passes = plan_passes(&counts, &LIMITS);
        let mut seen: Vec<usize> = passes.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..counts.len()).collect::<Vec<_>>());
        for pass in &passes {
            let longest = pass.iter().map(|&i| counts[i]).max().unwrap_or(0);
            assert!(pass.len() <= LIMITS.max_texts);
            assert!(
                pass.len() == 1 || pass.len() * longest <= LIMITS.max_tokens,
                "{pass:?}"
            );
            assert!(pass.windows(2).all(|w| counts[w[0]] <= counts[w[1]]));
        }
        assert_eq!(
            passes.last(),
            Some(&vec![7]),
            "an over-budget text runs alone"
        );
    }

    #[test]
    fn short_texts_fill_a_pass() {
        let passes = plan_passes(&[3; 10], &LIMITS);
        assert_eq!(
            passes.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![4, 4, 2]
        );
        assert!(plan_passes(&[], &LIMITS).is_empty());
    }
}
