//! A client's JSON request body, kept as it came: the top-level fields in their order,
//! each value as raw JSON text. Reading a field parses only that field; writing the
//! body back changes only the fields that were set, so passthrough never drops or
//! reshapes what the client sent.

use bytes::Bytes;
use serde::de::{self, DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

use crate::core::error::GatewayError;

/// Top-level fields a request may have: every API's requests have a few dozen at most,
/// and the duplicate check compares each new field with those before it.
pub const MAX_FIELDS: usize = 256;

#[derive(Debug, Clone)]
pub struct JsonBody {
    fields: Vec<(String, Box<RawValue>)>,
}

impl JsonBody {
    /// Parses a request body that must be a JSON object without duplicate keys, of at
    /// most [`MAX_FIELDS`] top-level fields. Linear in the body's size: nested values
    /// are only validated, never built here (where they are built, in translation and
    /// memory, serde_json's depth limit of 128 answers a 400).
    pub fn parse(bytes: &[u8]) -> Result<Self, GatewayError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(GatewayError::invalid("the request body is empty; expected a JSON object"));
        }
        serde_json::from_slice(bytes)
            .map_err(|e| GatewayError::invalid(format!("the request body is not valid JSON: {e}")))
    }

    /// The field's value, or None when absent or null.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, GatewayError> {
        match self.raw(key) {
            None => Ok(None),
            Some(raw) if raw.get() == "null" => Ok(None),
            Some(raw) => serde_json::from_str(raw.get())
                .map(Some)
                .map_err(|e| GatewayError::invalid(format!("`{key}` is malformed: {e}")).with_param(key)),
        }
    }

    pub fn raw(&self, key: &str) -> Option<&RawValue> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_ref())
    }

    pub fn contains(&self, key: &str) -> bool {
        self.raw(key).is_some()
    }

    /// Sets a field, in place if present, else at the end.
    pub fn set(&mut self, key: &str, value: &impl Serialize) -> Result<(), serde_json::Error> {
        self.set_raw(key, serde_json::value::to_raw_value(value)?);
        Ok(())
    }

    /// Sets a field to raw JSON text, in place if present, else at the end.
    pub fn set_raw(&mut self, key: &str, raw: Box<RawValue>) {
        match self.fields.iter_mut().find(|(k, _)| k == key) {
            Some((_, slot)) => *slot = raw,
            None => self.fields.push((key.to_owned(), raw)),
        }
    }

    pub fn to_bytes(&self) -> Bytes {
        self.to_bytes_with(&[])
    }

    /// The body with some fields set to new raw JSON values (added at the end when
    /// absent), written without copying the body first. The values must be valid JSON.
    pub fn to_bytes_with(&self, replacements: &[(&str, &str)]) -> Bytes {
        self.to_bytes_edited(replacements, &[], &[])
    }

    /// The body with `set` fields replaced or added, `defaults` added where the field
    /// is absent, and `removed` fields left out. Values are raw JSON text.
    pub fn to_bytes_edited(&self, set: &[(&str, &str)], defaults: &[(String, String)], removed: &[String]) -> Bytes {
        let extra: usize = set.iter().map(|(k, v)| k.len() + v.len() + 4).sum::<usize>()
            + defaults.iter().map(|(k, v)| k.len() + v.len() + 4).sum::<usize>();
        let size = self.fields.iter().map(|(k, v)| k.len() + v.get().len() + 4).sum::<usize>() + extra + 2;
        let mut out = Vec::with_capacity(size);
        let write_field = |out: &mut Vec<u8>, key: &str, raw: &str| {
            if out.len() > 1 {
                out.push(b',');
            }
            // Keys came from valid JSON strings; re-escaping them cannot fail.
            let _ = serde_json::to_writer(&mut *out, key);
            out.push(b':');
            out.extend_from_slice(raw.as_bytes());
        };
        let kept = |key: &str| !removed.iter().any(|r| r == key);
        out.push(b'{');
        for (key, value) in self.fields.iter().filter(|(key, _)| kept(key)) {
            let raw = set.iter().find(|(k, _)| k == key).map_or(value.get(), |(_, v)| *v);
            write_field(&mut out, key, raw);
        }
        for (key, raw) in set {
            if !self.contains(key) {
                write_field(&mut out, key, raw);
            }
        }
        for (key, raw) in defaults {
            if !self.contains(key) && !set.iter().any(|(k, _)| k == key) && kept(key) {
                write_field(&mut out, key, raw);
            }
        }
        out.push(b'}');
        Bytes::from(out)
    }
}

impl<'de> Deserialize<'de> for JsonBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;

        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = JsonBody;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonBody, A::Error> {
                let mut fields: Vec<(String, Box<RawValue>)> = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(key) = map.next_key::<String>()? {
                    if fields.len() == MAX_FIELDS {
                        return Err(de::Error::custom(format!("more than {MAX_FIELDS} top-level fields, the limit")));
                    }
                    // Two values for one field would let the gateway and the upstream
                    // read different requests.
                    if fields.iter().any(|(k, _)| *k == key) {
                        return Err(de::Error::custom(format!("duplicate field `{key}`")));
                    }
                    fields.push((key, map.next_value()?));
                }
                Ok(JsonBody { fields })
            }
        }

        deserializer.deserialize_map(FieldsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_fields_in_order_and_byte_for_byte() {
        let text = br#"{"model":"a","zeta":{"keep":[1,2.50,"x"]},"messages":[],"unknown_field":true}"#;
        let mut body = JsonBody::parse(text).unwrap();
        assert_eq!(body.to_bytes(), &text[..]);
        body.set("model", &"b").unwrap();
        assert_eq!(
            body.to_bytes(),
            &br#"{"model":"b","zeta":{"keep":[1,2.50,"x"]},"messages":[],"unknown_field":true}"#[..]
        );
        body.set("stream_options", &serde_json::json!({"include_usage": true})).unwrap();
        assert!(body.to_bytes().ends_with(br#","stream_options":{"include_usage":true}}"#));
        let body = JsonBody::parse(br#"{"model":"a","n":1}"#).unwrap();
        assert_eq!(body.to_bytes_with(&[("model", r#""b\"c""#)]), &br#"{"model":"b\"c","n":1}"#[..]);
        assert_eq!(body.to_bytes_with(&[("user", r#""u""#), ("n", "2")]), &br#"{"model":"a","n":2,"user":"u"}"#[..]);
        let defaults = [("n".to_owned(), "3".to_owned()), ("top_k".to_owned(), "5".to_owned())];
        assert_eq!(
            body.to_bytes_edited(&[("model", r#""b""#)], &defaults, &["model".to_owned()]),
            &br#"{"n":1,"top_k":5}"#[..]
        );
    }

    #[test]
    fn reads_typed_fields() {
        let body = JsonBody::parse(br#"{"model":"m","stream":true,"n":null,"max_tokens":"many"}"#).unwrap();
        assert_eq!(body.get::<String>("model").unwrap().as_deref(), Some("m"));
        assert_eq!(body.get::<bool>("stream").unwrap(), Some(true));
        assert_eq!(body.get::<u32>("n").unwrap(), None);
        assert_eq!(body.get::<u32>("absent").unwrap(), None);
        let error = body.get::<u32>("max_tokens").unwrap_err();
        assert_eq!(error.param.as_deref(), Some("max_tokens"));
    }

    #[test]
    fn caps_top_level_fields_naming_the_limit() {
        let fields: Vec<String> = (0..=MAX_FIELDS).map(|i| format!("\"k{i}\":1")).collect();
        let error = JsonBody::parse(format!("{{{}}}", fields.join(",")).as_bytes()).unwrap_err();
        assert!(error.message.contains("more than 256 top-level fields, the limit"), "{}", error.message);
        let wide = format!("{{\"messages\":[{}]}}", vec!["{\"a\":1}"; 100_000].join(","));
        assert!(JsonBody::parse(wide.as_bytes()).is_ok(), "long arrays are validated, not built");
    }

    #[test]
    fn rejects_what_is_not_one_unambiguous_object() {
        for (input, expected) in [
            (&b""[..], "the request body is empty"),
            (b"[1]", "invalid type: sequence, expected a JSON object"),
            (b"{\"model\":", "EOF while parsing"),
            (b"{\"model\":\"a\",\"model\":\"b\"}", "duplicate field `model`"),
            (b"{\"a\":1} trailing", "trailing characters"),
        ] {
            let error = JsonBody::parse(input).unwrap_err();
            assert!(error.message.contains(expected), "{input:?}: {}", error.message);
        }
    }
}
