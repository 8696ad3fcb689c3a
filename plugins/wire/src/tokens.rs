//! The token estimate used where no tokenizer or upstream count is at hand: about
//! four bytes of JSON or text a token, the figure providers quote for English text.

/// Bytes per token, on average.
pub const BYTES_PER_TOKEN: usize = 4;

/// Tokens in `bytes` bytes of text, rounded up.
pub fn estimate(bytes: usize) -> u64 {
    bytes.div_ceil(BYTES_PER_TOKEN) as u64
}

/// Bytes of text that fit in `tokens` tokens.
pub fn bytes_for(tokens: u64) -> usize {
    (tokens as usize).saturating_mul(BYTES_PER_TOKEN)
}

#[cfg(test)]
mod tests {
    #[test]
    fn estimates_round_up_and_invert() {
        assert_eq!(super::estimate(0), 0);
        assert_eq!(super::estimate(1), 1);
        assert_eq!(super::estimate(8), 2);
        assert_eq!(super::bytes_for(super::estimate(8)), 8);
    }
}
