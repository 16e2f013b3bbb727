//! Planning forward passes: texts grouped by length, within a token
//! budget.
//!
//! The encoder packs a pass's texts end to end, so a pass costs its
//! texts' tokens, not texts × longest. Its cost grows faster than its
//! tokens once its activations outgrow the caches (and, past tens of
//! megabytes, every buffer is fresh memory from the kernel), so many long
//! texts run faster as several passes than as one. Texts of similar
//! length share a pass, so its per-(text, head) attention tasks are of
//! similar size and spread evenly over the threads.

/// Limits of one forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassLimits {
    /// Tokens in one forward pass.
    pub max_tokens: usize,
    /// Texts in one forward pass.
    pub max_texts: usize,
}

impl Default for PassLimits {
    /// 2048 tokens and 64 texts: the fastest sizes for
    /// all-MiniLM-L6-v2 on a 2-core CPU.
    fn default() -> Self {
        Self {
            max_tokens: 2048,
            max_texts: 64,
        }
    }
}

/// Groups texts, given their token counts, into forward passes: shortest
/// first, each pass at most `max_texts` texts and `max_tokens` tokens (a
/// single text over the budget gets a pass of its own). Returns
/// the text indices of each pass; every index appears exactly once.
pub fn plan_passes(token_counts: &[usize], limits: &PassLimits) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..token_counts.len()).collect();
    order.sort_by_key(|&i| token_counts[i]);
    let mut passes: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut tokens = 0;
    for index in order {
        let count = token_counts[index].max(1);
        if !current.is_empty()
            && (current.len() >= limits.max_texts.max(1) || tokens + count > limits.max_tokens)
        {
            passes.push(std::mem::take(&mut current));
            tokens = 0;
        }
        current.push(index);
        tokens += count;
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
            let tokens: usize = pass.iter().map(|&i| counts[i]).sum();
            assert!(pass.len() <= LIMITS.max_texts);
            assert!(pass.len() == 1 || tokens <= LIMITS.max_tokens, "{pass:?}");
            assert!(pass.windows(2).all(|w| counts[w[0]] <= counts[w[1]]));
        }
        assert_eq!(
            passes.last(),
            Some(&vec![7]),
            "an over-budget text runs alone"
        );
    }

    #[test]
    fn the_budget_counts_tokens_not_padding() {
        // 1 + 1 + 1 + 90 fits 100 tokens; padded to the longest it would not.
        let passes = plan_passes(&[1, 90, 1, 1], &LIMITS);
        assert_eq!(passes, vec![vec![0, 2, 3, 1]]);
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
