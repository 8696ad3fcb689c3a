//! Who a request is for: its user, project and client, each with where it came from
//! (a key's pin, a header, a detector plugin, the default).

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// Pinned by the virtual key the request used.
    Key {
        id: String,
    },
    Header {
        name: String,
    },
    Plugin {
        name: String,
        reason: String,
    },
    Default,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Field {
    pub value: String,
    pub source: Source,
}

/// The resolved scope of one request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Identity {
    pub user: Field,
    pub project: Option<Field>,
    pub client: Option<Field>,
    /// The tags the client wraps around the user's words in user messages, as its
    /// detector named them (see `core::prompt::user_words`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scaffolding: Vec<String>,
}

impl Identity {
    pub fn project(&self) -> Option<&str> {
        self.project.as_ref().map(|f| f.value.as_str())
    }

    pub fn client(&self) -> Option<&str> {
        self.client.as_ref().map(|f| f.value.as_str())
    }
}
