//! RFC 8785 (JSON Canonicalization Scheme) for `serde_json::Value`, written straight into a buffer.
//! It sits on the hot path of every append and of verify, so it avoids building intermediate values.
//!
//! - strings: serde_json's escaping is exactly JCS's (`\"`, `\\`, `\b \t \n \f \r`, other control
//!   characters as lowercase `\u00xx`, everything else as UTF-8);
//! - numbers: ECMAScript's Number-to-String of the double (`ryu-js`);
//! - object members: sorted by the UTF-16 code units of their names.

use serde_json::{Map, Value};

pub fn to_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    write_value(value, &mut out);
    out
}

pub fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => write_double(number.as_f64().expect("serde_json numbers are finite"), out),
        Value::String(text) => write_string(text, out),
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        Value::Object(members) => write_object(members, out),
    }
}

fn write_object(members: &Map<String, Value>, out: &mut Vec<u8>) {
    let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
    sorted.sort_unstable_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
    out.push(b'{');
    for (index, (name, value)) in sorted.into_iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_string(name, out);
        out.push(b':');
        write_value(value, out);
    }
    out.push(b'}');
}

pub fn write_string(text: &str, out: &mut Vec<u8>) {
    serde_json::to_writer(out, text).expect("writing to a Vec cannot fail");
}

pub fn write_integer(number: i64, out: &mut Vec<u8>) {
    // Positions and versions stay far below 2^53, where a double and its integer print alike.
    write_double(number as f64, out);
}

fn write_double(number: f64, out: &mut Vec<u8>) {
    out.extend_from_slice(ryu_js::Buffer::new().format_finite(number).as_bytes());
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::to_vec;

    fn arbitrary_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
            any::<String>().prop_map(Value::String),
            "[\\x00-\\x1f\"\\\\/\u{7f}\u{e000}\u{1f600}a-z]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::hash_map("[a-zA-Z\u{e000}\u{1f600}_0-9]{0,6}|\\PC{0,4}", inner, 0..8)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// An independent implementation (the `serde_json_canonicalizer` crate) agrees on every value.
        #[test]
        fn agrees_with_an_independent_jcs_implementation(value in arbitrary_json()) {
            let ours = String::from_utf8(to_vec(&value)).unwrap();
            let theirs = serde_json_canonicalizer::to_string(&value).unwrap();
            prop_assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn rfc_8785_examples() {
        let value: Value = serde_json::from_str(
            r#"{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
                "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/", "literals": [null, true, false]}"#,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(to_vec(&value)).unwrap(),
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
        // Sorting is by UTF-16 code units: U+1F600 (a surrogate pair, 0xD83D…) sorts before U+E000.
        let value = json!({"\u{e000}": 1, "\u{1f600}": 2, "a": 3});
        assert_eq!(String::from_utf8(to_vec(&value)).unwrap(), "{\"a\":3,\"\u{1f600}\":2,\"\u{e000}\":1}");
    }
}
