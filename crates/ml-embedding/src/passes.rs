//! Planning forward passes: texts grouped by length so each pass wastes
//! little on padding, within a padded-token budget.
//!
//! A pass's cost grows faster than its padded tokens once its activations
//! outgrow the caches (and, past tens of megabytes, every buffer is fresh
//! memory from the kernel), so many long texts run faster as several
//! passes than as one.

/// Limits of one forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassLimits {
    /// Padded tokens in one forward pass (texts × longest text).
    pub max_tokens: usize,
    /// Texts in one forward pass.
    pub max_texts: usize,
}

impl Default for PassLimits {
    /// 2048 padded tokens and 64 texts: the fastest sizes for
    /// all-MiniLM-L6-v2 on a 2-core CPU.
    fn default() -> Self {
        Self {
            max_tokens: 2048,
            max_texts: 64,
        }
    }
}

/// Groups texts, given their token counts, into forward passes: shortest
/// first, each pass at most `max_texts` texts and `max_tokens` padded
/// tokens (a single text over the budget gets a pass of its own). Returns
/// the text indices of each pass; every index appears exactly once.
pub fn plan_passes(token_counts: &[usize], limits: &PassLimits) -> Vec<Vec<usize>> {
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

    const LIMITS: PassLimits = PassLimits {
        max_tokens: 100,
        max_texts: 4,
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
