//! What a finished turn leaves behind: the user's words and the answer's text, each
//! capped, remembered once the answer is complete.

use super::{NewMemory, Scope};

/// How much of each side of a turn is remembered: enough to find it and to remind the
/// model, not a transcript.
const QUESTION_BYTES: usize = 1_000;
const ANSWER_BYTES: usize = 1_000;

/// A turn being answered, remembered once its answer is complete.
#[derive(Debug)]
pub struct Turn {
    scope: Scope,
    client: Option<String>,
    question: String,
    answer: String,
    /// Remembered by a remote backend (Supermemory) rather than the local store.
    pub remote: bool,
    /// The embedding of the user's words, made for the recall: the memory's vector, so
    /// the turn is found by what the user said without embedding it again.
    pub vector: Option<super::embedding::Embedded>,
}

impl Turn {
    /// A turn asking `question` (capped) in `scope`, with no answer yet.
    pub fn new(scope: Scope, client: Option<String>, question: &str) -> Self {
        let question = question[..question.floor_char_boundary(QUESTION_BYTES)].to_owned();
        Self { scope, client, question, answer: String::new(), remote: false, vector: None }
    }

    /// Adds answer text as it arrives; beyond the cap it is dropped.
    pub fn add_answer(&mut self, text: &str) {
        let room = ANSWER_BYTES.saturating_sub(self.answer.len());
        if room > 0 {
            self.answer.push_str(&text[..text.floor_char_boundary(room)]);
        }
    }

    /// The answer has all the text that will be remembered.
    pub fn is_full(&self) -> bool {
        self.answer.len() >= ANSWER_BYTES
    }

    /// The memory this turn leaves. The user's words count most: an agent often answers
    /// a new question with a tool call and no text, and what the user told it is still
    /// worth remembering.
    pub fn into_memory(self, request_id: &str) -> Option<NewMemory> {
        let (question, answer) = (self.question.trim(), self.answer.trim());
        if question.is_empty() {
            return None;
        }
        let text = match answer {
            "" => format!("User: {question}"),
            answer => format!("User: {question}\nAssistant: {answer}"),
        };
        let memory = NewMemory::new(self.scope, self.client, Some(request_id.to_owned()), &text);
        // The same question again (a resent or forked turn) is the same memory. Of the
        // redacted question: not even a hash of a secret is kept.
        let fingerprint = super::fingerprint(&super::redact::redact(&self.question));
        Some(NewMemory { fingerprint, ..memory })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_are_bounded_and_keep_the_users_words() {
        let scope = Scope { user: "ana".into(), project: None };
        let mut turn = Turn::new(scope.clone(), None, "Q");
        turn.add_answer("é".repeat(600).as_str());
        turn.add_answer("more");
        assert!(turn.answer.len() <= ANSWER_BYTES && turn.answer.chars().all(|c| c == 'é'));
        let memory = turn.into_memory("req-1").unwrap();
        assert!(memory.text.starts_with("User: Q\nAssistant: é"));
        assert_eq!(memory.request_id.as_deref(), Some("req-1"));
        let silent =
            Turn { scope, client: None, question: "Q".into(), answer: " ".into(), remote: false, vector: None };
        assert_eq!(silent.into_memory("req-2").unwrap().text, "User: Q", "answered by a tool call alone");
    }
}
