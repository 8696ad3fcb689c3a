//! The mock's answer to the gateway's fact extraction requests (their instructions
//! ask for "durable facts"): deterministic, so tests can say what is stored. Each
//! statement of the turn's user words (not a question, three words or more) is a
//! fact; it replaces every known memory about the same subject, the words before its
//! first verb ("The staging database is now on port 6543" replaces "The staging
//! database is on port 5433").

use serde_json::{Value, json};

/// True for the system text of an extraction request.
pub fn is_extraction(system: &str) -> bool {
    system.contains("durable facts")
}

/// The JSON answer for the extraction request's user text (`{"known", "turn"}`).
pub fn answer(user_text: &str) -> String {
    let request: Value = serde_json::from_str(user_text).unwrap_or(Value::Null);
    let turn = request["turn"].as_str().unwrap_or_default();
    let said = turn.strip_prefix("User: ").unwrap_or(turn);
    let said = said.split("\nAssistant: ").next().unwrap_or(said);
    let known = request["known"].as_array().map(Vec::as_slice).unwrap_or_default();
    let facts: Vec<Value> = statements(said)
        .map(|fact| {
            let replaces: Vec<&str> = known
                .iter()
                .filter(|memory| subject(memory["text"].as_str().unwrap_or_default()) == subject(&fact))
                .filter_map(|memory| memory["id"].as_str())
                .collect();
            json!({ "text": fact, "replaces": replaces })
        })
        .collect();
    json!({ "facts": facts }).to_string()
}

/// The sentences of `text` that state something.
fn statements(text: &str) -> impl Iterator<Item = String> + '_ {
    let mut rest = text;
    std::iter::from_fn(move || {
        loop {
            if rest.trim().is_empty() {
                return None;
            }
            let end = rest.find(['.', '!', '?', '\n']).map_or(rest.len(), |i| i + 1);
            let (sentence, after) = rest.split_at(end);
            rest = after;
            let question = sentence.ends_with('?');
            let sentence = sentence.trim().trim_end_matches(['.', '!', '\n']);
            let sentence = ["Remember that ", "Note that ", "Remember: "]
                .iter()
                .find_map(|prefix| sentence.strip_prefix(prefix))
                .unwrap_or(sentence);
            if !question && sentence.split_whitespace().count() >= 3 {
                let mut chars = sentence.chars();
                let first = chars.next().map(|c| c.to_uppercase().collect::<String>()).unwrap_or_default();
                return Some(format!("{first}{}.", chars.as_str()));
            }
        }
    })
}

/// What a statement is about: its lower-cased words before the first verb, without
/// "the" and "now"; empty when it has no verb the mock knows.
fn subject(text: &str) -> String {
    const VERBS: [&str; 6] = ["is", "are", "uses", "use", "runs", "lives"];
    let text = text.strip_prefix("User: ").unwrap_or(text);
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    match words.iter().position(|w| VERBS.contains(&w.as_str())) {
        Some(verb) if verb > 0 => {
            words[..verb].iter().filter(|w| *w != "the" && *w != "now").cloned().collect::<Vec<_>>().join(" ")
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_become_facts_and_replace_their_subject() {
        let request = json!({
            "known": [
                { "id": "m1", "text": "The staging database is on port 5433." },
                { "id": "m2", "text": "Releases go out on Fridays." }
            ],
            "turn": "User: Remember that the staging database is now on port 6543. Which port is prod? ok\nAssistant: Noted."
        });
        let answer: Value = serde_json::from_str(&answer(&request.to_string())).unwrap();
        assert_eq!(
            answer,
            json!({ "facts": [{ "text": "The staging database is now on port 6543.", "replaces": ["m1"] }] })
        );
        assert_eq!(answer_of("not json"), json!({ "facts": [] }));
    }

    fn answer_of(text: &str) -> Value {
        serde_json::from_str(&answer(text)).unwrap()
    }
}
