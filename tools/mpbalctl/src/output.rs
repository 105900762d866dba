// SPDX-License-Identifier: GPL-2.0

//! One printing path for text and JSON, in the spirit of iproute2's
//! print_*(PRINT_ANY, key, fmt, value) helpers: every field is emitted once,
//! with its JSON key and its text rendering, so the two outputs cannot drift.

use serde_json::{Map, Value};

struct Frame {
    key: Option<String>,
    value: Value,
}

pub struct Printer {
    json: bool,
    pretty: bool,
    text: String,
    stack: Vec<Frame>,
    root: Option<Value>,
}

impl Printer {
    pub fn new(json: bool, pretty: bool) -> Self {
        Printer {
            json,
            pretty,
            text: String::new(),
            stack: Vec::new(),
            root: None,
        }
    }

    /// Start a JSON object (no-op in text mode). `key` is used inside objects.
    pub fn open_object(&mut self, key: Option<&str>) {
        self.open(key, Value::Object(Map::new()));
    }

    /// Start a JSON array (no-op in text mode).
    pub fn open_array(&mut self, key: Option<&str>) {
        self.open(key, Value::Array(Vec::new()));
    }

    fn open(&mut self, key: Option<&str>, value: Value) {
        if self.json {
            self.stack.push(Frame {
                key: key.map(str::to_string),
                value,
            });
        }
    }

    /// Close the innermost object or array.
    pub fn close(&mut self) {
        if let Some(frame) = self.stack.pop() {
            self.insert(frame.key.as_deref(), frame.value);
        }
    }

    fn insert(&mut self, key: Option<&str>, value: Value) {
        match self.stack.last_mut().map(|f| &mut f.value) {
            None => self.root = Some(value),
            Some(Value::Array(a)) => a.push(value),
            Some(Value::Object(m)) => {
                m.insert(key.unwrap_or_default().to_string(), value);
            }
            Some(_) => {}
        }
    }

    /// Emit one field: `value` under `key` in JSON mode, `text` in text mode.
    pub fn field(&mut self, key: &str, value: impl Into<Value>, text: &str) {
        if self.json {
            self.insert(Some(key), value.into());
        } else {
            self.text.push_str(text);
        }
    }

    pub fn is_json(&self) -> bool {
        self.json
    }

    /// A whole value (an array element, or the root) in JSON mode; nothing
    /// in text mode.
    pub fn value(&mut self, v: Value) {
        if self.json {
            self.insert(None, v);
        }
    }

    /// Text-only decoration (separators, newlines).
    pub fn text(&mut self, s: &str) {
        if !self.json {
            self.text.push_str(s);
        }
    }

    /// A string field; `fmt` has one `{}` for the value.
    pub fn string(&mut self, key: &str, fmt: &str, v: &str) {
        self.field(key, v, &fill(fmt, v));
    }

    /// An unsigned field; `fmt` has one `{}` for the value.
    pub fn u64(&mut self, key: &str, fmt: &str, v: u64) {
        self.field(key, v, &fill(fmt, &v.to_string()));
    }

    /// The finished output: text as built, or the JSON document plus newline
    /// (nothing at all for commands that printed nothing, like `ip -j`).
    pub fn finish(mut self) -> String {
        if !self.json {
            return self.text;
        }
        while !self.stack.is_empty() {
            self.close();
        }
        let Some(root) = self.root else {
            return String::new();
        };
        let mut out = if self.pretty {
            serde_json::to_string_pretty(&root)
        } else {
            serde_json::to_string(&root)
        }
        .unwrap_or_else(|_| "null".to_string());
        out.push('\n');
        out
    }
}

fn fill(fmt: &str, v: &str) -> String {
    fmt.replacen("{}", v, 1)
}

/// A /proc value as JSON: a number if it is a u64, else a string.
pub fn scalar(s: &str) -> Value {
    match s.parse::<u64>() {
        Ok(n) => Value::from(n),
        Err(_) => Value::from(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample(p: &mut Printer) {
        p.open_array(None);
        for (name, n) in [("a", 1u64), ("b", 2)] {
            p.open_object(None);
            p.string("name", "{}:", name);
            p.u64("n", " n {}", n);
            p.open_array(Some("flags"));
            p.string("flag", " {}", "dead");
            p.close();
            p.text("\n");
            p.close();
        }
        p.close();
    }

    #[test]
    fn text_mode() {
        let mut p = Printer::new(false, false);
        sample(&mut p);
        assert_eq!(p.finish(), "a: n 1 dead\nb: n 2 dead\n");
    }

    #[test]
    fn json_mode_same_calls() {
        let mut p = Printer::new(true, false);
        sample(&mut p);
        let v: Value = serde_json::from_str(&p.finish()).unwrap();
        assert_eq!(
            v,
            json!([
                {"name": "a", "n": 1, "flags": ["dead"]},
                {"name": "b", "n": 2, "flags": ["dead"]}
            ])
        );
    }

    /// A whole value goes into the open array in JSON, and nowhere in text.
    #[test]
    fn whole_values() {
        for json in [false, true] {
            let mut p = Printer::new(json, false);
            p.open_array(None);
            p.value(json!({"dev": "x"}));
            p.text("x\n");
            p.close();
            let out = p.finish();
            assert_eq!(out, if json { "[{\"dev\":\"x\"}]\n" } else { "x\n" });
        }
    }

    #[test]
    fn json_keeps_field_order_and_closes_unbalanced() {
        let mut p = Printer::new(true, true);
        p.open_object(None);
        p.string("z", "{}", "1");
        p.u64("a", "{}", 2);
        let out = p.finish();
        assert!(out.find("\"z\"").unwrap() < out.find("\"a\"").unwrap());
        assert!(out.contains('\n'));
    }

    #[test]
    fn nothing_printed_is_empty_output() {
        assert_eq!(Printer::new(true, false).finish(), "");
    }

    #[test]
    fn scalars() {
        assert_eq!(scalar("12"), json!(12));
        assert_eq!(scalar("managed"), json!("managed"));
        assert_eq!(scalar("-1"), json!("-1"));
        assert_eq!(
            scalar("18446744073709551616"),
            json!("18446744073709551616")
        );
    }
}
